import { Hono } from 'hono'
import { validator } from 'hono/validator'
import { z } from 'zod'
import { once, StableArea } from '../../src/index.js'
import { Accounts } from './accounts.js'

type Bindings = { ONCE: DurableObjectNamespace<StableArea>; ACCOUNTS: DurableObjectNamespace<Accounts> }

const Deposit = z.object({ amount: z.number().int().positive().max(100_000_000) })

const ledger = (env: Bindings) => env.ACCOUNTS.get(env.ACCOUNTS.idFromName('ledger'))

/**
 * A small bank: `POST /accounts/:id/deposits` with an `Idempotency-Key`
 * changes the balance once, however often the client retries. Routes are
 * chained so that `hc<BankApp>` is fully typed.
 *
 * @example
 * curl -X POST localhost:8787/accounts/alice/deposits \
 *   -H 'Idempotency-Key: "dep-1"' -H 'content-type: application/json' -d '{"amount":100}'
 */
export const app = new Hono<{ Bindings: Bindings }>()
  .get('/', (c) =>
    c.text(
      'hono-once bank example\n' +
        '  GET  /accounts/:id            balance\n' +
        '  POST /accounts/:id/deposits   {"amount": <cents>} with an Idempotency-Key header\n',
    ),
  )
  .get('/accounts/:id', async (c) => c.json({ id: c.req.param('id'), balance: await ledger(c.env).balance(c.req.param('id')) }))
  .post(
    '/accounts/:id/deposits',
    once(),
    validator('json', (value, c) => {
      const parsed = Deposit.safeParse(value)
      if (parsed.success) return parsed.data
      return c.json({ type: 'about:blank', title: 'Invalid deposit', status: 400, detail: z.prettifyError(parsed.error) }, 400, {
        'content-type': 'application/problem+json',
      })
    }),
    async (c) => {
      const id = c.req.param('id')
      const { amount } = c.req.valid('json')
      const balance = await ledger(c.env).deposit(id, amount)
      return c.json({ id, deposited: amount, balance, depositId: c.var.once.requestId }, 201)
    },
  )

/** The bank's route types, for `hc<BankApp>(url, { fetch: createOnceFetch() })`. */
export type BankApp = typeof app

export { StableArea, Accounts }
export default app
