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

/*
 * Review s30 (S10): the rest of F6's kind, found in workerd's D1; each failed (503 store-unavailable) before the
 * rule went by the SQLite result code and D1's statement checks instead of a list of messages.
 */
describe('d1Store: a batch that fails on every attempt is the handler’s failure; a passing D1 error is not', () => {
  /** An ordered app whose handler pushes `statement`, on `database` (the binding, or a wrapper over it). */
  const appOn = (database: D1Database, statement: (tx: D1Tx<D1Database>) => D1PreparedStatement) => {
    const app = new Hono<{ Variables: ReceiverVariables<D1Tx<D1Database>> }>()
    app.post('/x', onceReceiver({ store: d1Store(database), gapWaitMs: 0 }), (c) => {
      c.var.receiver.tx.push(statement(c.var.receiver.tx))
      return c.json({ ok: true }, 201)
    })
    return app
  }
  /** Two attempts of sequence 1 of a fresh domain: each answer as `status type applied retryable`. */
  const attempts = async (app: Hono<any>, n = 2) => {
    const r = crypto.randomUUID()
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {})
    const answers: string[] = []
    for (let i = 0; i < n; i++) {
      const res = await app.request('/x', { method: 'POST', headers: { [ONCE_HEADERS.requestId]: r, [ONCE_HEADERS.domain]: `d-${r}`, [ONCE_HEADERS.sequence]: '1' } })
      const p = (await res.json()) as { type?: string; retryable?: boolean }
      answers.push(`${res.status} ${p.type?.split('/').pop() ?? '-'} ${res.headers.get(ONCE_HEADERS.applied)} ${p.retryable ?? '-'}`)
    }
    quiet.mockRestore()
    return answers
  }

  it.each<[string, (tx: D1Tx<D1Database>) => D1PreparedStatement]>([
    ['a statement bound with too few parameters', (tx) => tx.db.prepare('INSERT INTO s27_accounts (id, balance) VALUES (?, ?)').bind('only-one')],
    ['a statement bound with too many parameters', (tx) => tx.db.prepare('INSERT INTO s27_accounts (id, balance) VALUES (?, ?)').bind('a', 1, 2)],
    ['a pushed SAVEPOINT', (tx) => tx.db.prepare('SAVEPOINT s1')],
    ['a pushed BEGIN', (tx) => tx.db.prepare('BEGIN')],
    ['a pushed COMMIT', (tx) => tx.db.prepare('COMMIT')],
    ['a pushed RELEASE', (tx) => tx.db.prepare('RELEASE s1')],
    ['a PRAGMA D1 does not allow', (tx) => tx.db.prepare('PRAGMA journal_mode = DELETE')],
    ['a statement that is only a comment', (tx) => tx.db.prepare('-- nothing')],
  ])('%s: 500 handler-failed ?0, not retryable, on every attempt', async (_, statement) => {
    expect(await attempts(appOn(db, statement))).toEqual(Array(2).fill('500 handler-failed ?0 false'))
  })

  it('a D1 outage while the batch runs (network connection lost) stays 503 store-unavailable, and the next attempt applies', async () => {
    let outage = 1
    const flaky = new Proxy(db, {
      get(t, p) {
        const value = Reflect.get(t, p, t) as unknown
        if (p === 'batch') {
          return async (statements: D1PreparedStatement[]) => {
            // The store's own snapshot reads are batches of selects: fail only the write batch.
            if (statements.length > 3 && outage-- > 0) throw new Error('D1_ERROR: Network connection lost.')
            return t.batch(statements)
          }
        }
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value
      },
    })
    const app = appOn(flaky, (tx) => tx.db.prepare('INSERT INTO s27_accounts (id, balance) VALUES (?, 1)').bind(crypto.randomUUID()))
    const answers = await attempts(app)
    expect(answers[0]).toBe('503 store-unavailable ?0 true')
    expect(answers[1]).toMatch(/^201 - \?1/)
  })
})
