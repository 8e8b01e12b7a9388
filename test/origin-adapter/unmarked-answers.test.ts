/**
 * A signed write answered outside the receiver (a path outside its mount, a middleware before it): such an
 * answer applied nothing and counts nothing against the origin; each origin is asked once, and when none
 * applies the request the client gets the origin's answer as it gave it, not a retryable 502. A throw at one
 * origin (handler-failed, maybe passing) sends the request to the next.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { originGroup, proxyWith } from '../../src/origin-adapter/dispatch.js'
import { memoryStore, onceReceiver } from '../../src/origin/index.js'
import { newKey } from '../helpers.js'

const secrets = { TEST_SIGNING_SECRET: env.TEST_SIGNING_SECRET }

function originApp(name: string, sends: string[], fail = { n: 0 }) {
  const app = new Hono()
  app.use('/accounts/*', onceReceiver({ store: memoryStore(), secrets }))
  app.post('/accounts/:id/deposits', (c) => {
    sends.push(name)
    if (fail.n > 0) {
      fail.n--
      throw new Error('payments-eu.internal: connect ECONNREFUSED')
    }
    return c.json({ ok: true }, 201)
  })
  return { name, fetcher: { fetch: async (req: Request) => (name === 'eu' || name === 'us' ? sends.push(`${name}:${new URL(req.url).pathname}`) : 0, app.fetch(req)) } }
}

const post = (app: Hono, path: string) =>
  app.request(path, { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{"amount":1}' }, env)

describe('a signed write answered outside the receiver', () => {
  it("a client's typo path gets the origin's 404, each origin asked once (a load balancer may stand before one only), not a retryable 502", async () => {
    const sends: string[] = []
    const app = new Hono()
    app.use('/*', once({ replayCache: false }))
    app.post('/*', proxy({ origins: [originApp('eu', sends), originApp('us', sends)], strategy: 'failover', secret: { env: 'TEST_SIGNING_SECRET' } }))
    const res = await post(app, '/acounts/a/deposits')
    expect(sends).toEqual(['eu:/acounts/a/deposits', 'us:/acounts/a/deposits'])
    expect(res.status).toBe(404)
    expect(res.headers.get('once-origin')).toBe('us')
  })
})

describe('one client opens every breaker', () => {
  it('five typo POSTs do not open the origins\' breakers for every caller', async () => {
    const sends: string[] = []
    const group = originGroup({ origins: [originApp('eu', sends), originApp('us', sends)], strategy: 'failover', secret: { env: 'TEST_SIGNING_SECRET' } }, 'proxy()')
    const app = new Hono()
    app.use('/*', once({ replayCache: false }))
    app.post('/*', proxyWith(group))
    for (let i = 0; i < 5; i++) await post(app, '/acounts/a/deposits')
    expect(group.health.report(['eu', 'us']).map((h) => h.breaker)).toEqual(['closed', 'closed'])
  })
})

describe('a transient throw at one origin', () => {
  it('failover: the next origin (same database) is asked', async () => {
    const sends: string[] = []
    const app = new Hono()
    app.use('/*', once({ replayCache: false }))
    app.post('/*', proxy({ origins: [originApp('eu', sends, { n: 1 }), originApp('us', sends)], strategy: 'failover', secret: { env: 'TEST_SIGNING_SECRET' } }))
    const res = await post(app, '/accounts/a/deposits')
    expect(res.status).toBe(201)
  })
})

describe('an answer passed on though no origin applied the request', () => {
  it('is not stored for the key: once the way to the receiver is fixed, a retry with the same key is applied (and only then stored)', async () => {
    const sends: string[] = []
    let lb = true
    const behind = originApp('eu', sends)
    // A load balancer in front of the only origin redirects every request to https, until it is fixed.
    const eu = { name: 'eu', fetcher: { fetch: async (req: Request) => (lb ? new Response(null, { status: 302, headers: { location: 'https://eu.example/' } }) : behind.fetcher.fetch(req)) } }
    const app = new Hono()
    app.use('/*', once({ replayCache: false }))
    app.post('/*', proxy({ origins: [eu], strategy: 'failover', secret: { env: 'TEST_SIGNING_SECRET' } }))
    const key = `"${newKey()}"`
    const send = () => app.request('/accounts/a/deposits', { method: 'POST', headers: { 'idempotency-key': key, 'content-type': 'application/json' }, body: '{"amount":1}' }, env)
    // Not passed on as the client's answer (a redirect or a success would say the write went through): a 502 that
    // says where to look.
    const first = await send()
    expect(first.status).toBe(502)
    expect((await first.json<{ detail: string }>()).detail).toMatch(/eu: 302 unmarked.*onceReceiver/)
    lb = false
    const again = await send()
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBeNull()
    expect((await send()).headers.get('idempotent-replayed')).toBe('true')
    expect(sends.filter((s) => s === 'eu')).toHaveLength(1)
  })
})

describe("an app that returns 500 (its own catch) for a request", () => {
  it("is passed over, each request going on to the next origin (the 500 is about the request), and leaves the origin's health alone: one input an app cannot take must not open its breaker for every other request", async () => {
    const sends: string[] = []
    const broken = new Hono()
    broken.use('/accounts/*', onceReceiver({ store: memoryStore(), secrets }))
    broken.post('/accounts/:id/deposits', (c) => (sends.push('eu'), c.json({ error: 'amount not supported' }, 500)))
    const eu = { name: 'eu', fetcher: { fetch: async (req: Request) => broken.fetch(req) } }
    const group = originGroup({ origins: [eu, originApp('us', sends)], strategy: 'failover', secret: { env: 'TEST_SIGNING_SECRET' }, breaker: { failures: 3, cooldownMs: 60_000 } }, 'proxy()')
    const app = new Hono()
    app.use('/*', once({ replayCache: false }))
    app.post('/*', proxyWith(group))
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) statuses.push((await post(app, '/accounts/a/deposits')).status)
    expect(statuses).toEqual([201, 201, 201, 201, 201])
    expect(group.health.report(['eu', 'us']).map((h) => h.breaker)).toEqual(['closed', 'closed'])
    expect(sends.filter((s) => s === 'eu')).toHaveLength(5) // once per request, never sent it again
  })
})
