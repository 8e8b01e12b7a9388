/*
 * Found by a review of the s27 fixes (a7c798f..4190292), origin half; each test failed at 4190292.
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { validator } from 'hono/validator'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { memoryStore, ONCE_HEADERS, onceReceiver, sqliteStore, type MemoryTx, type ReceiverVariables } from '../../src/origin/index.js'
import { verdictOf } from '../../src/shared/applied.js'

type SqlEnv = { Variables: ReceiverVariables<DatabaseSync> }
const post = (a: Hono<any>, path: string, headers: Record<string, string>, body = '{"amount":5}') =>
  a.request(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })
const count = (db: DatabaseSync, table: string) => Number((db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n)
/** How the edge reads an answer (the one rule). */
const verdictOfAnswer = async (res: Response) => {
  const headers: [string, string][] = []
  res.headers.forEach((v, n) => headers.push([n, v]))
  return verdictOf(res.status, headers, new Uint8Array(await res.arrayBuffer()))
}

describe('D1: an HTTPException thrown after the handler wrote', () => {
  it('records its answer without the writes it was thrown to abort (no overdraft kept)', async () => {
    const db = new DatabaseSync(':memory:')
    db.exec('CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL)')
    db.exec("INSERT INTO accounts VALUES ('a1', 10)")
    const app = new Hono<SqlEnv>()
    app.use('/accounts/*', onceReceiver({ store: sqliteStore(db), gapWaitMs: 0 }))
    app.post('/accounts/:id/withdrawals', async (c) => {
      const { amount } = await c.req.json<{ amount: number }>()
      const { balance } = c.var.receiver.tx.prepare('UPDATE accounts SET balance = balance - ? WHERE id = ? RETURNING balance').get(amount, c.req.param('id')) as { balance: number }
      // The usual transactional idiom: throw to abort (better-sqlite3's db.transaction, Prisma, Drizzle all roll back on a throw).
      if (balance < 0) throw new HTTPException(409, { message: 'insufficient funds' })
      return c.json({ balance }, 201)
    })
    const res = await post(app, '/accounts/a1/withdrawals', { [ONCE_HEADERS.requestId]: 'w-1', [ONCE_HEADERS.domain]: 'a1', [ONCE_HEADERS.sequence]: '1' }, '{"amount":50}')
    expect(res.status).toBe(409)
    // Before (a7c798f): rolled back (500 handler-failed). Now: the 409 is recorded and the overdraft with it.
    expect((db.prepare("SELECT balance FROM accounts WHERE id = 'a1'").get() as { balance: number }).balance).toBe(10)
  })
})

describe("D2: an app with Hono's documented onError (every error → 500)", () => {
  it("a validator's HTTPException(400) that the app's onError renders 500 is handler-failed (poison-counting), not a passing 500 ?0 that stalls an ordered domain", async () => {
    const store = memoryStore()
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    // hono.dev/docs/api/hono#error-handling, as written there.
    app.onError((err, c) => c.text('Custom Error Message', 500))
    app.use('*', onceReceiver({ store, gapWaitMs: 0 }))
    app.post('/v', validator('json', (v) => v), (c) => c.json({ ok: true }, 201))
    const res = await post(app, '/v', { [ONCE_HEADERS.requestId]: 'r-v', [ONCE_HEADERS.domain]: 'acct-1', [ONCE_HEADERS.sequence]: '1' }, '{"amount":')
    const verdict = await verdictOfAnswer(res)
    // The same request fails the same way every time: it must be final, or count towards poison (permanent), as before.
    expect(verdict.kind === 'applied' || (verdict.kind === 'not-applied' && verdict.permanent)).toBe(true)
  })
})

describe('D3: a path no handler serves, in an ordered domain', () => {
  it('Hono’s not-found 404 is the final answer it was (a client typo does not stall the domain)', async () => {
    const store = memoryStore()
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.use('/accounts/*', onceReceiver({ store, gapWaitMs: 0 }))
    app.post('/accounts/:id/deposits', (c) => c.json({ ok: true }, 201))
    // "deposit" for "deposits": every replica answers this, on every attempt, for ever.
    const res = await post(app, '/accounts/a1/deposit', { [ONCE_HEADERS.requestId]: 'r-typo', [ONCE_HEADERS.domain]: 'a1', [ONCE_HEADERS.sequence]: '1' })
    expect(res.status).toBe(404)
    const verdict = await verdictOfAnswer(res)
    // Before (a7c798f): 404 ?1, final. Now: not-applied and not permanent, so the edge's poison rule never abandons it and every
    // later request of domain a1 waits behind it (gap) for good.
    expect(verdict.kind === 'applied' || (verdict.kind === 'not-applied' && verdict.permanent)).toBe(true)
  })
})

describe('D4: maxRunMs does not cover the answer’s body', () => {
  it('a handler that returns a body that never ends (return fetch(upstream), stalled) is given up at maxRunMs too, and the connection is free', async () => {
    const db = new DatabaseSync(':memory:')
    const store = sqliteStore(db, { waitMs: 200 })
    const app = new Hono<SqlEnv>()
    app.use('*', onceReceiver({ store, waitMs: 200, gapWaitMs: 0, maxRunMs: 200 }))
    app.post('/relay', () => new Response(new ReadableStream({ start() {} }), { status: 200 }))
    app.post('/ok', (c) => c.json({ ok: true }, 201))
    const hung = Promise.resolve(post(app, '/relay', { [ONCE_HEADERS.requestId]: 'r-stall' }))
    const within = <T>(p: Promise<T>, ms: number) => Promise.race([p.then((v) => v), new Promise<'still running'>((r) => setTimeout(() => r('still running'), ms))])
    const first = await within(hung, 1500)
    // And meanwhile every other request of the process waits for the connection (503 after waitMs).
    const other = await post(app, '/ok', { [ONCE_HEADERS.requestId]: 'r-other' })
    expect({ first: first === 'still running' ? first : (first as Response).status, other: other.status }).toEqual({ first: 504, other: 201 })
  })
})

describe('D5: sqliteStore’s busy_timeout juggling', () => {
  it('puts back the value the app has now, not the one it had when the store was made', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's27d-'))
    try {
      const db = new DatabaseSync(join(dir, 'o.db'))
      db.exec('PRAGMA busy_timeout = 1500')
      const store = sqliteStore(db)
      // Later the app changes its mind (a shorter wait for its own statements).
      db.exec('PRAGMA busy_timeout = 100')
      await store.apply({ requestId: 'x', noop: false }, async () => ({ status: 201, headers: [], body: new Uint8Array() }))
      expect((db.prepare('PRAGMA busy_timeout').get() as { timeout: number }).timeout).toBe(100)
      db.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('D7: a second onceReceiver() steps aside before its own checks', () => {
  it("a route's own signed receiver (secrets) inside an app-wide unsigned one still refuses an unsigned request", async () => {
    const store = memoryStore()
    let runs = 0
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    // The app's general receiver (internal callers, no signatures)…
    app.use('/api/*', onceReceiver({ store }))
    // …and the payments module's own, which requires the edge's signature.
    app.post('/api/payments', onceReceiver({ store, secrets: { ONCE_SIGNING_SECRET: 's3cret-s3cret-s3cret-s3cret-s3cret' } }), (c) => {
      runs++
      return c.json({ paid: true }, 201)
    })
    const res = await post(app, '/api/payments', { [ONCE_HEADERS.requestId]: 'forged-1' }) // no Signature, no Signature-Input
    // Before (a7c798f) the inner receiver verified the signature and refused it. Now it steps aside (receiver.ts:220) because the
    // outer one set c.var.receiver, so the handler runs unsigned.
    expect({ status: res.status, runs }).toEqual({ status: 401, runs: 0 })
  })
})
