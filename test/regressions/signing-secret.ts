/** Senders for the repros of a signing secret that is unset (or set again) between a key's attempts. */
import { env } from 'cloudflare:workers'
import type { Hono } from 'hono'
import gateway from '../../src/gateway.js'

const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext

/**
 * A deposit of 5 under `key` through `app`, with `TEST_SIGNING_SECRET` in its env or not.
 *
 * @example
 * const send = depositUnder(app, 'acct-1', key); await send(true); await send(false)
 */
export function depositUnder(app: Hono, account: string, key: string): (withSecret: boolean) => Promise<Response> {
  return async (withSecret) =>
    app.request(
      `/accounts/${account}/deposits`,
      { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":5}' },
      { ONCE: env.ONCE, ...(withSecret ? { TEST_SIGNING_SECRET: env.TEST_SIGNING_SECRET } : {}) },
    )
}

/**
 * A deposit of 5 to `account` through the gateway with one `replicate` route (`/accounts/:id/*`, domain `param:id`)
 * to `origins`, under a key, with `ONCE_SIGNING_SECRET` set to `secret` or unset.
 *
 * @example
 * const deposit = gatewayDeposit([eu, us], 'acct-1'); await deposit(newKey(), env.TEST_SIGNING_SECRET)
 */
export function gatewayDeposit(origins: { name: string; url: string }[], account: string): (key: string, secret: string | undefined) => Promise<Response> {
  const config = JSON.stringify({
    origins: origins.map(({ name, url }) => ({ name, url })),
    routes: [{ path: '/accounts/:id/*', methods: ['POST'], strategy: 'replicate', domain: 'param:id', timeoutMs: 1000, deadlineMs: 3000 }],
    keys: { leaseMs: 3000 },
  })
  return async (key, secret) =>
    gateway.fetch!(
      new Request(`http://gateway.test/accounts/${account}/deposits`, {
        method: 'POST',
        headers: { authorization: 'Bearer caller-1', 'idempotency-key': `"${key}"`, 'content-type': 'application/json' },
        body: '{"amount":5}',
      }) as Request<unknown, IncomingRequestCfProperties>,
      { ONCE: env.ONCE, ONCE_CONFIG: config, ...(secret === undefined ? {} : { ONCE_SIGNING_SECRET: secret }) },
      ctx,
    )
}
