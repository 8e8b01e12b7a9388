/**
 * Found by an adversarial review of the origin half (s27, F6); failed on a7c798f.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { d1Store, ONCE_HEADERS, onceReceiver, PROBLEM_BASE, type D1Tx, type ReceiverVariables } from '../../src/origin/index.js'

const db = env.RECEIVER_DB

beforeAll(async () => {
  await db.prepare('CREATE TABLE IF NOT EXISTS s27_accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))').run()
})

describe('d1Store classifies a deterministic failure of the handler’s own statements as a passing store outage', () => {
  it('F6: a pushed statement that always fails (CHECK) answers a permanent problem, not 503 store-unavailable retryable for ever', async () => {
    const app = new Hono<{ Variables: ReceiverVariables<D1Tx<D1Database>> }>()
    app.post('/accounts/:id/withdrawals', onceReceiver({ store: d1Store(db), gapWaitMs: 0 }), async (c) => {
      const { amount } = await c.req.json<{ amount: number }>()
      c.var.receiver.tx.push(
        c.var.receiver.tx.db.prepare('INSERT INTO s27_accounts (id, balance) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET balance = balance - ?').bind(c.req.param('id'), -amount, amount),
      )
      return c.json({ ok: true }, 201)
    })
    const acct = `a-${crypto.randomUUID()}`
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {})
    const answers: { status: number; applied: string | null; type: string; retryable: boolean }[] = []
    // The edge's resends of sequence 1 of the account's domain: the same bytes each time.
    for (let attempt = 1; attempt <= 3; attempt++) {
      const res = await app.request(`/accounts/${acct}/withdrawals`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: 'w-1', [ONCE_HEADERS.domain]: acct, [ONCE_HEADERS.sequence]: '1', [ONCE_HEADERS.attempt]: String(attempt) },
        body: JSON.stringify({ amount: 5 }),
      })
      const p = (await res.json()) as { type: string; retryable: boolean }
      answers.push({ status: res.status, applied: res.headers.get(ONCE_HEADERS.applied), type: p.type, retryable: p.retryable })
    }
    quiet.mockRestore()
    // Before (a7c798f): 503 store-unavailable, retryable, every time: the edge never poisons it, and the domain never moves on.
    for (const a of answers) {
      expect(a.type).not.toBe(`${PROBLEM_BASE}store-unavailable`)
      expect(a.retryable).toBe(false)
    }
  })
})
