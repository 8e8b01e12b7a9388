/**
 * proxy() in a sub-app with its own onError is seen as proxy() (review s31 D4): Hono's app.route() wraps every
 * handler of such a sub-app (`COMPOSED_HANDLER`), and once() took the wrapper for a handler of its own: no relay,
 * and an ordered route answered every write 500 misconfigured.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { startOrigins } from '../farm.js'
import { newKey, relayRowsWhileInFlight } from '../helpers.js'

describe('once() and proxy() in a sub-app mounted with app.route()', () => {
  for (const onError of [false, true]) {
    it(`an ordered route takes a deposit (sub-app ${onError ? 'with' : 'without'} its own onError)`, async () => {
      const origins = await startOrigins(['r1', 'r2'])
      const accounts = new Hono()
      if (onError) accounts.onError((err, c) => c.json({ error: String(err) }, 500))
      accounts.post(
        '/:id/deposits',
        once({ domain: (c) => c.req.param('id')!, replayCache: false }),
        proxy({ origins: origins.map((o) => ({ name: o.name, url: o.url })), strategy: 'replicate', timeoutMs: 1000, deadlineMs: 3000 }),
      )
      const app = new Hono()
      app.route('/accounts', accounts)
      const account = `acct-${crypto.randomUUID().slice(0, 8)}`
      const res = await app.request(`/accounts/${account}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{"amount":100}' }, env)
      const text = await res.text()
      console.log(onError ? 'with onError:' : 'without onError:', res.status, text.slice(0, 200))
      expect(res.status).toBe(201)
    })
  }
})

describe('once() and proxy() in a sub-app with its own onError: what the alarm could resend', () => {
  for (const onError of [false, true]) {
    it(`a write in flight has its relay stored (sub-app ${onError ? 'with' : 'without'} onError)`, async () => {
      const [eu] = await startOrigins(['eu'])
      const accounts = new Hono()
      if (onError) accounts.onError((err, c) => c.json({ error: String(err) }, 500))
      accounts.post('/:id/deposits', once({ replayCache: false }), proxy({ origins: [{ name: 'eu', url: eu!.url }], strategy: 'failover', timeoutMs: 1000, deadlineMs: 3000 }))
      const app = new Hono()
      app.route('/accounts', accounts)
      await eu!.faults({ hang: true })
      const key = newKey()
      const pending = app.request('/accounts/a/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":100}' }, env)
      const rows = await relayRowsWhileInFlight(key)
      await eu!.faults({ hang: false })
      await (await pending).body?.cancel()
      console.log(onError ? 'with onError:' : 'without onError:', 'relay rows while in flight:', JSON.stringify(rows))
      expect(rows).toEqual([{ state: 'processing' }])
    })
  }
})
