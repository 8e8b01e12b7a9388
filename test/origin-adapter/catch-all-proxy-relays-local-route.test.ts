/**
 * Review s31 (proxy), finding P3: once() stores a relay with the admit whenever a proxy() is among Hono's matched
 * handlers after it (registry.ts relayPlanOf skips the handlers before it), even when an app's own handler
 * registered first answers the route (docs/dispatch.md: "a handler of your own (even on a path a catch-all proxy()
 * also matches)"). If the Worker dies in that local handler, the alarm sends the request to the catch-all's
 * origins, which apply it, and commits their answer: an effect the route never asked for, on top of the local one.
 */
import { env } from 'cloudflare:workers'
import { runDurableObjectAlarm } from 'cloudflare:test'
import { Hono } from 'hono'
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

describe('a local handler in front of a catch-all proxy()', () => {
  it('a Worker that dies in the local handler: the alarm must not send the request to the origins', async () => {
    const [eu] = await startOrigins(['eu'])
    let local = 0
    let inHandler!: () => void
    const reached = new Promise<void>((r) => (inHandler = r))
    const app = new Hono()
    app.use('*', once({ namespace: diesAfterAdmit, leaseMs: 3000, maxRunMs: 3_600_000, replayCache: false }))
    // VIP deposits are booked here, by the app itself; everything else goes to the regional origins.
    app.post('/accounts/vip/deposits', async (c) => {
      local++
      if (c.req.header('x-die') === '1') {
        inHandler()
        await new Promise(() => {}) // the isolate is evicted before the commit
      }
      return c.json({ booked: 'locally' }, 201)
    })
    app.post('/accounts/*', proxy({ origins: [{ name: 'eu', url: eu!.url }], strategy: 'failover', timeoutMs: 1000, deadlineMs: 3000 }))
    const key = newKey()
    const send = (die: boolean) =>
      app.request('/accounts/vip/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json', ...(die ? { 'x-die': '1' } : {}) }, body: '{"amount":100}' }, env)
    void send(true)
    await reached
    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    const stats = await eu!.stats()
    console.log('origin after the alarm:', stats.requests, 'requests, balances', JSON.stringify(stats.balances), '; record:', (await recordOf(key))?.state, (await recordOf(key))?.status)
    const retry = await send(false)
    console.log('client retry:', retry.status, retry.headers.get('once-origin'), await retry.text(), 'local effects:', local)
    // The route never sends anything to the origins: the deposit is the app's own.
    expect(stats.requests).toBe(0)
    expect(stats.balances).toEqual({})
  })

  it("the local handler's request is not refused by limits of the relay it never needs (headers-too-large)", async () => {
    const [eu] = await startOrigins(['eu'])
    const app = new Hono()
    app.use('*', once({ replayCache: false }))
    app.post('/accounts/vip/deposits', (c) => c.json({ booked: 'locally' }, 201))
    app.post('/accounts/*', proxy({ origins: [{ name: 'eu', url: eu!.url }], strategy: 'failover' }))
    const res = await app.request(
      '/accounts/vip/deposits',
      { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json', 'x-trace': 'a'.repeat(9000) }, body: '{"amount":100}' },
      env,
    )
    console.log('local route with a 9 KB header:', res.status, await res.clone().text())
    expect(res.status).toBe(201)
  })

  it('a Worker that dies in a middleware between once() and proxy() (an authorization check): the alarm must not send what it never let through', async () => {
    const [eu] = await startOrigins(['eu'])
    let checking!: () => void
    const reached = new Promise<void>((r) => (checking = r))
    const app = new Hono()
    app.post(
      '/accounts/:id/deposits',
      once({ namespace: diesAfterAdmit, leaseMs: 3000, maxRunMs: 3_600_000, replayCache: false }),
      // Does the caller own this account? Asks the accounts service (slow); this caller does not: 403.
      async (c, next) => {
        checking()
        await new Promise(() => {}) // the isolate is evicted while the check is out
        if (c.req.param('id') !== 'mine') return c.json({ error: 'not your account' }, 403)
        await next()
      },
      proxy({ origins: [{ name: 'eu', url: eu!.url }], strategy: 'failover', timeoutMs: 1000, deadlineMs: 3000 }),
    )
    const key = newKey()
    void app.request('/accounts/someone-else/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":100}' }, env)
    await reached
    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    const stats = await eu!.stats()
    console.log('origin after the alarm (authz never passed):', stats.requests, 'requests, balances', JSON.stringify(stats.balances))
    expect(stats.balances).toEqual({})
  })
})
