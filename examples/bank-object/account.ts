import { Hono } from 'hono'
import { validator } from 'hono/validator'
import { z } from 'zod'
import { OnceObject, OnceReply } from '../../src/index.js'

export const Amount = z.object({ amount: z.number().int().positive().max(100_000_000) })

/** A 400 problem for a body that is not `{"amount": <cents>}`; the edge uses it too. */
export const amountOf = validator('json', (value, c) => {
  const parsed = Amount.safeParse(value)
  if (parsed.success) return parsed.data
  return c.json({ type: 'about:blank', title: 'Invalid amount', status: 400, detail: z.prettifyError(parsed.error) }, 400, {
    'content-type': 'application/problem+json',
  })
})

/**
 * One bank account per Durable Object: its balance and ledger live in the
 * object's SQLite, and so do its idempotency records (`OnceObject`). A
 * deposit's ledger row, its balance change and its record commit in one
 * transaction: a retried deposit is applied once, and a crash leaves both or
 * neither.
 *
 * @example
 * const account = env.ACCOUNT.get(env.ACCOUNT.idFromName('alice'))
 * await account.deposit(100) // a plain RPC method still works: 100
 */
export class Account extends OnceObject {
  app = new Hono()
    .get('/accounts/:id', (c) => c.json({ id: c.req.param('id'), balance: this.balance() }))
    .post('/accounts/:id/deposits', amountOf, (c) => {
      const { amount } = c.req.valid('json')
      const balance = this.deposit(amount, c.req.header('once-request-id'))
      return c.json({ id: c.req.param('id'), deposited: amount, balance, depositId: c.req.header('once-request-id') }, 201)
    })
    .post('/accounts/:id/withdrawals', amountOf, (c) => {
      const { amount } = c.req.valid('json')
      // A refusal is a final answer: it is stored, and the retry gets the same 409.
      if (this.balance() < amount) return c.json({ title: 'Insufficient funds', balance: this.balance() }, 409)
      const balance = this.deposit(-amount, c.req.header('once-request-id'))
      return c.json({ id: c.req.param('id'), withdrawn: amount, balance }, 201)
    })

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env)
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS ledger (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT, cents INTEGER NOT NULL, balance INTEGER NOT NULL)`)
  }

  /**
   * Adds `cents` (negative to withdraw) to the balance and writes a ledger row.
   * Not idempotent on purpose: a duplicate that slipped through shows in the ledger.
   *
   * @returns the new balance
   */
  deposit(cents: number, requestId?: string): number {
    const balance = this.balance() + cents
    this.ctx.storage.sql.exec('INSERT INTO ledger (request_id, cents, balance) VALUES (?, ?, ?)', requestId ?? null, cents, balance)
    return balance
  }

  /**
   * A payment as a method call (the edge's `onceObject(…, { call })`): the
   * fastest path, run synchronously with its record in one `transactionSync()`.
   * A refusal is final, stored and replayed like the app's 409.
   *
   * @param cents - the amount, validated at the edge
   * @returns the new balance, or a 409 `OnceReply` when the balance is short
   */
  pay(cents: number): { paid: number; balance: number; paymentId: string | null } | OnceReply {
    const balance = this.balance()
    if (balance < cents) return new OnceReply(409, { title: 'Insufficient funds', balance })
    // The ledger row carries the logical request's id, the same on every retry of this payment.
    const paymentId = this.onceRequestId ?? null
    return { paid: cents, balance: this.deposit(-cents, paymentId ?? undefined), paymentId }
  }

  /** The balance (0 for a new account). */
  balance(): number {
    return this.ctx.storage.sql.exec<{ b: number | null }>('SELECT balance AS b FROM ledger ORDER BY seq DESC LIMIT 1').toArray()[0]?.b ?? 0
  }

  /** The ledger rows, oldest first. */
  ledger(): { requestId: string | null; cents: number; balance: number }[] {
    return this.ctx.storage.sql
      .exec<{ request_id: string | null; cents: number; balance: number }>('SELECT request_id, cents, balance FROM ledger ORDER BY seq')
      .toArray()
      .map((r) => ({ requestId: r.request_id, cents: r.cents, balance: r.balance }))
  }
}
