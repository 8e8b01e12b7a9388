/**
 * The alarm never sends a request the route would not have sent (review s31 P3, D2): once() stores the request with
 * the admit only when it is the route's handler itself and proxy() the next one. Not when an app's own handler in
 * front of a catch-all proxy() answers, an authorization middleware between them has not let it through yet, or one
 * is composed with once() into a single handler (hono/combine): a Worker that dies there leaves the key to the
 * client's retry, and those routes are not held to a relay's limits either.
 */
import { env } from 'cloudflare:workers'
import { runDurableObjectAlarm } from 'cloudflare:test'
import { Hono, type MiddlewareHandler } from 'hono'
import { every } from 'hono/combine'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { startOrigins } from '../farm.js'
import { diesAfterAdmit, expireLeases, newKey, recordOf, stubFor } from '../helpers.js'

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

  // The same authorization check, as its own handler between once() and proxy(), or composed with once() into one
  // handler by hono/combine's every(): either way once() cannot see it, and relays nothing.
  for (const shape of ['between once() and proxy()', "composed with once() by hono/combine's every()"] as const) {
    it(`a Worker that dies in an authorization check ${shape}: the alarm must not send what it never let through`, async () => {
      const [eu] = await startOrigins(['eu'])
      let checking!: () => void
      const reached = new Promise<void>((r) => (checking = r))
      // Does the caller own this account? Asks the accounts service (slow); this caller does not: 403.
      const authz: MiddlewareHandler = async (c, next) => {
        checking()
        await new Promise(() => {}) // the isolate is evicted while the check is out
        if (c.req.param('id') !== 'mine') return c.json({ error: 'not your account' }, 403)
        await next()
      }
      const guard = once({ namespace: diesAfterAdmit, leaseMs: 3000, maxRunMs: 3_600_000, replayCache: false })
      const forward = proxy({ origins: [{ name: 'eu', url: eu!.url }], strategy: 'failover', timeoutMs: 1000, deadlineMs: 3000 })
      const app = new Hono()
      if (shape === 'between once() and proxy()') app.post('/accounts/:id/deposits', guard, authz, forward)
      else app.post('/accounts/:id/deposits', every(guard, authz), forward)
      const key = newKey()
      void app.request('/accounts/someone-else/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":100}' }, env)
      await reached
      await expireLeases(key)
      await runDurableObjectAlarm(await stubFor(key))
      expect((await eu!.stats()).balances).toEqual({})
    })
  }
})
