/**
 * Review s31 (proxy), finding P6 (MED): on a signed write every answer must be the receiver's; one without
 * `Once-Applied` "applied nothing" (applied.ts verdictOf, receiverOnly). When no origin applies the request,
 * proxy() passes such an answer on as the client's answer whatever its status, a 2xx too (a route outside the
 * receiver's mount, an SPA fallback, a cache answering 200): the client is told 200 for a write the edge itself
 * reads as not applied, and once() gives the key back.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { newKey, recordOf } from '../helpers.js'

describe('an unmarked 2xx to a signed write', () => {
  it('is not passed on as a success', async () => {
    // The origin's app answers this path outside onceReceiver()'s mount (its SPA fallback): 200, nothing applied.
    const eu = { name: 'eu', fetcher: { fetch: async () => new Response('<!doctype html><title>app</title>', { status: 200, headers: { 'content-type': 'text/html' } }) } }
    const app = new Hono()
    app.use('/*', once({ replayCache: false }))
    app.post('/*', proxy({ origins: [eu], strategy: 'failover', secret: { env: 'TEST_SIGNING_SECRET' } }))
    const key = newKey()
    const res = await app.request('/acounts/a/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":100}' }, env)
    console.log('client got:', res.status, res.headers.get('content-type'), '| record:', (await recordOf(key))?.state)
    expect(res.status).toBeGreaterThanOrEqual(400)
  })
})
