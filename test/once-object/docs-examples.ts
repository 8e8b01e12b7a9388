/**
 * docs/durable-state.md's examples of method calls (Wallet) and lease routes (Cart), their code as the page has it,
 * so tests run them against bad input and a refused charge (review s32 object M3, M4). Each region between the
 * markers is the page's text, line for line (indentation aside): docs-examples.node.test.ts checks that it still is.
 */
import { Hono } from 'hono'
import { type OnceObjectOptions, OnceReply, onceRoute } from '../../src/index.js'

/** The Wallet's tables, as its constructor on the page makes them. */
export function walletTables(ctx: { storage: { sql: SqlStorage } }): void {
  // ---- from docs/durable-state.md ----
  ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS ledger (seq INTEGER PRIMARY KEY AUTOINCREMENT, cents INTEGER NOT NULL, balance INTEGER NOT NULL)')
  // ---- end ----
}

/** The Wallet's method, as the page declares it; `this` is the object it is added to. */
export class WalletMethods {
  declare readonly ctx: { storage: { sql: SqlStorage } }

  // ---- from docs/durable-state.md ----
  /** Synchronous SQL only; the returned value is the reply's JSON body. */
  withdraw(cents: unknown): { balance: number } | OnceReply {
    // A refusal is final: recorded and replayed like any 4xx (a malformed body arrives as undefined).
    if (typeof cents !== 'number' || !Number.isSafeInteger(cents) || cents <= 0) return new OnceReply(400, { title: 'cents must be a positive whole number' })
    const balance = this.ctx.storage.sql.exec<{ b: number }>('SELECT balance AS b FROM ledger ORDER BY seq DESC LIMIT 1').toArray()[0]?.b ?? 0
    if (cents > balance) return new OnceReply(409, { title: 'insufficient funds', balance })
    this.ctx.storage.sql.exec('INSERT INTO ledger (cents, balance) VALUES (?, ?)', -cents, balance - cents)
    return { balance: balance - cents }
  }
  // ---- end ----
}

/** The Wallet's edge options, as the page gives them to onceObject(). */
export const walletOptions = {
  // ---- from docs/durable-state.md ----
  // Parsed without a throw: a malformed body is the client's mistake (the method's 400), not Hono's 500.
  call: async (c) => ({ method: 'withdraw', args: [((await c.req.json().catch(() => null)) as { cents?: unknown } | null)?.cents], status: 201 }),
  // ---- end ----
} satisfies OnceObjectOptions

/**
 * The Cart's app, its handler as the page has it, on the path the test edge sends to; `fetch` is the payment
 * provider (the handler's `fetch` is this one).
 */
export function cartApp(ctx: { storage: { sql: SqlStorage } }, fetch: (url: string, init: RequestInit) => Promise<Response>) {
  class Cart {
    readonly ctx = ctx
    app = new Hono().post('/acct/:name/checkout', onceRoute({ lease: true }), async (c) => {
      // ---- from docs/durable-state.md ----
      const signal = c.req.raw.signal // aborted past maxRunMs (see below)
      // The same on every retry of the key: the payment provider applies the charge once, however often it is sent.
      const headers = { 'idempotency-key': c.req.header('once-request-id') ?? '' }
      const res = await fetch('https://payments.example/charge', { method: 'POST', headers, body: await c.req.text(), signal })
      if (signal.aborted) return c.json({ abandoned: true }, 503) // the client's retry does it
      // A lease route's writes stay whatever it answers after them: write only what the charge's outcome says.
      if (res.status === 402) return c.json({ charged: false }, 402) // declined: final, recorded; the cart stays unpaid
      if (!res.ok) return c.json({ charged: false }, 502) // the provider failed: the key is released for the retry
      this.ctx.storage.sql.exec('UPDATE cart SET paid = 1')
      return c.json({ charged: true }, 201)
      // ---- end ----
    })
  }
  return new Cart().app
}
