import { type Context, Hono } from 'hono'
import { onceObject } from '../../src/index.js'
import { Account, Amount, amountOf } from './account.js'

type Bindings = { ACCOUNT: DurableObjectNamespace<Account> }

/**
 * The bank with its state in Durable Objects: one `Account` object per
 * account. Every request to `/accounts/:id/...` goes to that account's
 * object in one RPC; keyed writes are applied once, with their idempotency
 * record in the account's own transaction.
 *
 * @example
 * curl -X POST localhost:8787/accounts/alice/deposits \
 *   -H 'Idempotency-Key: "dep-1"' -H 'content-type: application/json' -d '{"amount":100}'
 */
export const app = new Hono<{ Bindings: Bindings }>()

/** The account's object: one per account id, so a key is unique per account. */
const account = (c: Context<{ Bindings: Bindings }>) => c.env.ACCOUNT.get(c.env.ACCOUNT.idFromName(c.req.param('id') ?? ''))

// A payment is one synchronous method of the account: the edge validates and parses the body and names the
// method (a method call, the fastest path); registered before the catch-all route below.
app.post(
  '/accounts/:id/payments',
  amountOf,
  // The validator has answered a bad body with its 400; parsing again here only gives the amount its type.
  onceObject<{ Bindings: Bindings }, Account>(account, {
    call: async (c) => ({ method: 'pay', args: [Amount.parse(await c.req.json()).amount], status: 201 }),
  }),
)
app.all('/accounts/:id/*', onceObject(account))
app.get('/accounts/:id', onceObject(account))

export { Account }
export default app
