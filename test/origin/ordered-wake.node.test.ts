/*
 * A request that arrived ahead of its turn goes on as soon as the one before it is recorded, however that one ended.
 * Review s30 (S3): a recorded HTTPException answer did not wake it, so it waited its whole gapWaitMs.
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { describe, expect, it } from 'vitest'
import { memoryStore, ONCE_HEADERS, onceReceiver, type MemoryTx, type ReceiverVariables } from '../../src/origin/index.js'

const GAP_WAIT_MS = 3000

describe('the next sequence of a domain goes on when the one before it is recorded', () => {
  it.each<[string, Record<string, string>, (c: { json: (v: unknown, s: 201) => Response }) => Response]>([
    ['an answer the handler returned', {}, (c) => c.json({ ok: true }, 201)],
    [
      'an HTTPException the handler threw (recorded without its writes)',
      {},
      () => {
        throw new HTTPException(422, { message: 'amount over limit' })
      },
    ],
    ['a no-op slot', { [ONCE_HEADERS.noop]: '?1' }, (c) => c.json({ ok: true }, 201)],
  ])('%s: sequence 2, waiting for it, applies at once, not after gapWaitMs', async (_, extra, first) => {
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.use('*', onceReceiver({ store: memoryStore(), gapWaitMs: GAP_WAIT_MS }))
    app.post('/x', (c) => (c.var.receiver.sequence === 1 ? first(c) : c.json({ ok: true }, 201)))
    const post = (sequence: number, headers: Record<string, string> = {}) =>
      app.request('/x', { method: 'POST', headers: { [ONCE_HEADERS.requestId]: `r-${sequence}`, [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: String(sequence), ...headers }, body: '{}' })
    const started = Date.now()
    const second = post(2)
    await new Promise((r) => setTimeout(r, 50))
    expect((await post(1, extra)).headers.get(ONCE_HEADERS.applied)).toBe('?1')
    expect((await second).status).toBe(201)
    expect(Date.now() - started).toBeLessThan(GAP_WAIT_MS / 2)
  })
})
