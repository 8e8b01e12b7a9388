import { Hono } from 'hono'
import { z } from 'zod'
import { once, StableArea } from '../../src/index.js'
import { Accounts } from './accounts.js'

type Bindings = { ONCE: DurableObjectNamespace<StableArea>; ACCOUNTS: DurableObjectNamespace<Accounts> }

const Deposit = z.object({ amount: z.number().int().positive().max(1_000_000_00) })

const ledger = (env: Bindings) => env.ACCOUNTS.get(env.ACCOUNTS.idFromName('ledger'))

/**
 * A small bank: `POST /accounts/:id/deposits` with an `Idempotency-Key`
 * changes the balance once, however often the client retries.
 *
 * @example
 * curl -X POST localhost:8787/accounts/alice/deposits \
 *   -H 'Idempotency-Key: "dep-1"' -H 'content-type: application/json' -d '{"amount":100}'
 */
export const app = new Hono<{ Bindings: Bindings }>()

app.get('/', (c) =>
  c.text(
    'hono-once bank example\n' +
      '  GET  /accounts/:id            balance\n' +
      '  POST /accounts/:id/deposits   {"amount": <cents>} with an Idempotency-Key header\n',
  ),
)

app.get('/accounts/:id', async (c) => c.json({ id: c.req.param('id'), balance: await ledger(c.env).balance(c.req.param('id')) }))

app.post('/accounts/:id/deposits', once(), async (c) => {
  const parsed = Deposit.safeParse(await c.req.json().catch(() => undefined))
  if (!parsed.success) {
    return c.json({ type: 'about:blank', title: 'Invalid deposit', status: 400, detail: z.prettifyError(parsed.error) }, 400, {
      'content-type': 'application/problem+json',
    })
  }
  const id = c.req.param('id')
  const balance = await ledger(c.env).deposit(id, parsed.data.amount)
  return c.json({ id, deposited: parsed.data.amount, balance, depositId: c.var.once.requestId }, 201)
})

export { StableArea, Accounts }
export default app
