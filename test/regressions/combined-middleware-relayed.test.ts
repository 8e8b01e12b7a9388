/**
 * Review s31 (diff), D2: relayPlanOf() (src/origin-adapter/registry.ts) decides "proxy() is the very next handler"
 * from Hono's matchedRoutes[routeIndex + 1]. A middleware composed with once() into one handler (hono/combine's
 * every(once(), authz), the documented way to group an auth chain) is one route entry: the authorization check runs
 * between once() and proxy(), yet once() stores the relay with the admit. A Worker that dies in the check leaves a
 * relay the alarm sends to the origins, which apply what the check never let through (P7, surviving).
 */
import { env } from 'cloudflare:workers'
import { runDurableObjectAlarm } from 'cloudflare:test'
import { Hono } from 'hono'
import { every } from 'hono/combine'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { startOrigins } from '../farm.js'
import { expireLeases, newKey, recordOf, stubFor } from '../helpers.js'

/** The stable area as a Worker that dies sees it: renewals never sent (its lease runs out), everything else real. */
function diesAfterAdmit(): typeof env.ONCE {
  return {
    idFromName: (name: string) => env.ONCE.idFromName(name),
    get: (id: DurableObjectId) =>
      new Proxy(env.ONCE.get(id) as unknown as StableAreaApi, {
        get: (target, prop) => (prop === 'renew' ? () => new Promise(() => {}) : Reflect.get(target, prop)),
      }),
  } as unknown as typeof env.ONCE
}

describe('an authorization check composed with once() by hono/combine every()', () => {
  it('a Worker that dies in the check: the alarm must not send what the check never let through', async () => {
    const [eu] = await startOrigins(['eu'])
    let checking!: () => void
    const reached = new Promise<void>((r) => (checking = r))
    const authz = async (c: { req: { param: (n: string) => string } }, next: () => Promise<void>) => {
      checking()
      await new Promise(() => {}) // the isolate is evicted while the check is out
      if (c.req.param('id') !== 'mine') return new Response('not your account', { status: 403 })
      await next()
    }
    const app = new Hono()
    app.post(
      '/accounts/:id/deposits',
      every(once({ namespace: diesAfterAdmit, leaseMs: 3000, maxRunMs: 3_600_000, replayCache: false }), authz as never),
      proxy({ origins: [{ name: 'eu', url: eu!.url }], strategy: 'failover', timeoutMs: 1000, deadlineMs: 3000 }),
    )
    const key = newKey()
    void app.request('/accounts/someone-else/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":100}' }, env)
    await reached
    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    const stats = await eu!.stats()
    const record = await recordOf(key)
    console.log('origin after the alarm (authz never passed):', stats.requests, 'requests, balances', JSON.stringify(stats.balances), '; record:', record?.state, record?.status)
    expect(stats.balances).toEqual({})
  })
})
