/*
 * memoryStore's own example under concurrency. Review s30 (S7): it read the balance, awaited the body, and set the
 * computed balance on commit, so one of two concurrent deposits (different request ids, both 201 ?1) was lost.
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { memoryStore, ONCE_HEADERS, onceReceiver, type MemoryTx, type ReceiverVariables } from '../../src/origin/index.js'

/** memoryStore()'s @example (src/origin/stores/memory.ts), as written there. */
function exampleBank() {
  const balances = new Map<string, number>()
  const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
  app.post('/accounts/:id/deposits', onceReceiver({ store: memoryStore() }), async (c) => {
    const id = c.req.param('id')
    const amount = ((await c.req.json().catch(() => null)) as { amount?: unknown } | null)?.amount
    if (typeof amount !== 'number' || !Number.isSafeInteger(amount)) return c.json({ error: 'amount: expected an integer' }, 400)
    // Computed when it commits: another deposit may commit while this one awaits.
    c.var.receiver.tx.onCommit(() => balances.set(id, (balances.get(id) ?? 0) + amount))
    return c.json({ id, deposited: amount }, 201)
  })
  const deposit = (requestId: string, body = '{"amount":5}') =>
    app.request('/accounts/a1/deposits', { method: 'POST', headers: { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: requestId }, body })
  return { balances, deposit }
}

describe("memoryStore's example keeps every deposit", () => {
  it('concurrent deposits of different request ids all count', async () => {
    const { balances, deposit } = exampleBank()
    const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => deposit(`r-${i}`)))
    expect(answers.map((r) => `${r.status} ${r.headers.get(ONCE_HEADERS.applied)}`)).toEqual(Array(5).fill('201 ?1'))
    expect(balances.get('a1')).toBe(25)
  })

  it('a concurrent repeat of one request id counts once; a malformed body is a recorded 400 that counts nothing', async () => {
    const { balances, deposit } = exampleBank()
    const answers = await Promise.all([deposit('r-1'), deposit('r-1'), deposit('r-bad', '{"amount":')])
    expect(answers.map((r) => r.status)).toEqual([201, 201, 400])
    expect(balances.get('a1')).toBe(5)
  })
})
