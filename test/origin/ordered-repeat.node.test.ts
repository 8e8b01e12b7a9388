/*
 * A repeat of an applied sequence gets its stored answer at once, even while a later request of its domain runs.
 * Review s30 (S9, s27 F12): it waited for the domain behind the running one and answered 409 in-flight ?0
 * ("still applying an earlier request") after waitMs, though its answer was stored.
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { memoryStore, ONCE_HEADERS, onceReceiver, PROBLEM_BASE, type MemoryTx, type ReceiverVariables } from '../../src/origin/index.js'

const WAIT_MS = 2000

/** A domain whose sequence 2 is held running until `release()`; sequence 1 is applied first. */
async function domainBusyWithTwo() {
  const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
  app.use('*', onceReceiver({ store: memoryStore(), waitMs: WAIT_MS, gapWaitMs: 0 }))
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  let runs = 0
  app.post('/x', async (c) => {
    runs++
    if (c.var.receiver.sequence === 2) await held
    return c.json({ seq: c.var.receiver.sequence }, 201)
  })
  const post = (requestId: string, sequence: number) =>
    app.request('/x', { method: 'POST', headers: { [ONCE_HEADERS.requestId]: requestId, [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: String(sequence) }, body: '{}' })
  expect((await post('r-1', 1)).status).toBe(201)
  const second = post('r-2', 2)
  await new Promise((r) => setTimeout(r, 20))
  return { post, release, second, runs: () => runs }
}

/** The answer, and how long it took. */
const timed = async (answer: Response | Promise<Response>) => {
  const started = Date.now()
  const res = await answer
  const type = res.headers.get('content-type')?.includes('problem') ? ((await res.clone().json()) as { type: string }).type : undefined
  return { status: res.status, applied: res.headers.get(ONCE_HEADERS.applied), type, body: await res.text(), ms: Date.now() - started }
}

describe('a repeat of an applied sequence does not wait for its domain', () => {
  it('gets its stored answer (?1) at once while a later sequence runs; the handler does not run again', async () => {
    const d = await domainBusyWithTwo()
    const again = await timed(d.post('r-1', 1))
    expect(again).toMatchObject({ status: 201, applied: '?1', body: '{"seq":1}' })
    expect(again.ms).toBeLessThan(WAIT_MS / 2)
    d.release()
    expect((await d.second).status).toBe(201)
    expect(d.runs()).toBe(2)
  })

  it('another request id for the applied slot gets sequence-conflict at once, not in-flight', async () => {
    const d = await domainBusyWithTwo()
    const other = await timed(d.post('r-other', 1))
    expect(other).toMatchObject({ status: 409, applied: '?0', type: `${PROBLEM_BASE}sequence-conflict` })
    expect(other.ms).toBeLessThan(WAIT_MS / 2)
    d.release()
    await d.second
  })

  it('the next sequence still waits its turn behind the running one, then applies', async () => {
    const d = await domainBusyWithTwo()
    const third = d.post('r-3', 3)
    await new Promise((r) => setTimeout(r, 50))
    d.release()
    expect((await d.second).status).toBe(201)
    expect(await timed(third)).toMatchObject({ status: 201, applied: '?1', body: '{"seq":3}' })
  })
})
