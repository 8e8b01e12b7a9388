/**
 * After commit(res), the client gets what its duplicates will: a handler that answers otherwise afterwards (another
 * status) is answered with the committed reply (review s31 P4's kind: dispatch() committed an
 * applied 500, the handler answered 202, the retry replayed 500).
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once } from '../../src/index.js'
import { newKey } from '../helpers.js'

const post = (app: Hono, key: string) => app.request('/orders', { method: 'POST', headers: { 'idempotency-key': `"${key}"` } }, env)

describe('the answer after commit(res)', () => {
  it.each([
    ['another final status', (c: { json: (v: unknown, s: 201 | 202 | 500) => Response }) => c.json({ id: 1 }, 202)],
    ['a failure', (c: { json: (v: unknown, s: 201 | 202 | 500) => Response }) => c.json({ id: 1 }, 500)],
  ])('%s: the client gets the committed reply, as its retry does', async (_what, after) => {
    const app = new Hono()
    let runs = 0
    app.post('/orders', once({ replayCache: false }), async (c) => {
      runs++
      await c.var.once.commit(c.json({ id: 1 }, 201))
      return after(c)
    })
    const key = newKey()
    const first = await post(app, key)
    const retry = await post(app, key)
    expect({ status: first.status, body: await first.json() }).toEqual({ status: 201, body: { id: 1 } })
    expect({ status: retry.status, body: await retry.json(), replayed: retry.headers.get('idempotent-replayed') }).toEqual({ status: 201, body: { id: 1 }, replayed: 'true' })
    expect(runs).toBe(1)
  })

  it('the same reply returned after it is answered as it is (read once, not answered twice)', async () => {
    const app = new Hono()
    app.post('/orders', once({ replayCache: false }), async (c) => {
      const res = c.json({ id: 7 }, 201)
      await c.var.once.commit(res)
      return res
    })
    const res = await post(app, newKey())
    expect({ status: res.status, body: await res.json(), replayed: res.headers.get('idempotent-replayed') }).toEqual({ status: 201, body: { id: 7 }, replayed: null })
  })
})
