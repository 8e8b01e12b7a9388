import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import gateway, { parseGatewayConfig } from '../../src/gateway.js'
import { once, type OnceOptions, PROBLEM_BASE } from '../../src/index.js'
import { startOrigins } from '../farm.js'
import { newKey, problemOf } from '../helpers.js'

/** A counting route behind once(options): `runs` is how often the effect really happened. */
function counted(options: OnceOptions) {
  let runs = 0
  const app = new Hono().post('/x', once({ replayCache: false, ...options }), (c) => c.json({ run: ++runs }, 201))
  const post = (key: string, headers: Record<string, string> = {}) =>
    app.request('/x', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, ...headers }, body: '{}' }, env)
  return { post, runs: () => runs }
}

describe('sharing keys across callers only when asked (issue 15.16)', () => {
  it("answers 400 scope-missing when a scope function yields '', and runs nothing", async () => {
    const { post, runs } = counted({ scope: (c) => c.req.header('x-tenant') ?? '' })
    const key = newKey()
    const res = await post(key)
    expect(res.status).toBe(400)
    expect(await problemOf(res)).toMatchObject({ type: `${PROBLEM_BASE}scope-missing`, retryable: false, idempotency_key: key })
    // Another caller without a tenant is refused too: it never meets the first one's record.
    expect((await post(key)).status).toBe(400)
    expect((await post(key, { 'x-tenant': 'acme' })).status).toBe(201)
    expect(runs()).toBe(1)
  })

  it("shares one scope when once() says unscoped: 'shared'", async () => {
    const { post, runs } = counted({ scope: () => '', unscoped: 'shared' })
    const key = newKey()
    expect((await post(key)).status).toBe(201)
    expect((await post(key)).headers.get('idempotent-replayed')).toBe('true')
    expect(runs()).toBe(1)
  })

  it("keeps the default fallback: no JWT and no Authorization is unscoped, with no warning when 'shared' is said", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { post, runs } = counted({ unscoped: 'shared' })
    const key = newKey()
    await post(key)
    expect((await post(key)).headers.get('idempotent-replayed')).toBe('true')
    expect(runs()).toBe(1)
    expect(warn.mock.calls.filter(([m]) => /unscoped/.test(String(m)))).toHaveLength(0)
    warn.mockRestore()
  })

  it('refuses an unknown unscoped value at start-up, naming it', () => {
    expect(() => once({ unscoped: 'yes' as never })).toThrow(/unscoped/)
  })
})

describe('the unscoped warning (issue 16)', () => {
  it('is logged once per isolate, not once per once() instance', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    for (let i = 0; i < 15; i++) await counted({}).post(newKey())
    expect(warn.mock.calls.filter(([m]) => /unscoped/.test(String(m))).length).toBeLessThanOrEqual(1)
    warn.mockRestore()
  })
})

describe('the gateway: scope and domain (issue 15.16)', () => {
  const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext
  const call = (config: unknown, path: string, init: RequestInit = {}) =>
    gateway.fetch!(new Request(`http://gateway.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>, { ONCE: env.ONCE, ONCE_CONFIG: JSON.stringify(config), ONCE_SIGNING_SECRET: 'test-secret-0123456789' }, ctx)
  const origins = [{ name: 'eu', url: 'https://eu.example' }]

  it.each([
    ['a param the path lacks', [{ path: '/accounts/:id/*', strategy: 'replicate', domain: 'param:idx' }], /routes\.0\.domain: the path "\/accounts\/:id\/\*" has no :idx parameter \(it declares :id\)/],
    ['a param on a path without params', [{ path: '/', methods: ['GET'] }, { path: '/accounts', strategy: 'replicate', domain: 'param:id' }], /routes\.1\.domain: .*has no :id parameter \(it declares none\)/],
    ['a segment past the end of a fixed path', [{ path: '/accounts/:id', strategy: 'replicate', domain: 'segment:3' }], /routes\.0\.domain: .*2 segment/],
  ])('refuses at start-up a domain no request can have: %s', (_name, routes, message) => {
    expect(() => parseGatewayConfig({ origins, routes })).toThrow(message)
  })

  it('accepts the params Hono declares: plain, optional and with a regex', () => {
    for (const path of ['/a/:id', '/a/:id?', '/a/:id{[0-9]+}/b']) {
      expect(() => parseGatewayConfig({ origins, routes: [{ path, strategy: 'replicate', domain: 'param:id' }] })).not.toThrow()
    }
    expect(() => parseGatewayConfig({ origins, routes: [{ path: '/a/*', strategy: 'replicate', domain: 'segment:5' }] })).not.toThrow()
  })

  it('answers 400 scope-missing when keys.scope names a header the request lacks; keys.scope "none" shares', async () => {
    const [origin] = await startOrigins(['eu'])
    const routes = [{ path: '/accounts/:id/deposits', methods: ['POST'], strategy: 'failover', timeoutMs: 2000, deadlineMs: 4000 }]
    const deposit = (scope: string, key: string, headers: Record<string, string> = {}) =>
      call({ origins: [{ name: 'eu', url: origin!.url }], routes, keys: { scope } }, '/accounts/a1/deposits', {
        method: 'POST',
        headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json', ...headers },
        body: '{"amount":1}',
      })
    const key = newKey()
    const missing = await deposit('header:X-Tenant', key)
    expect(missing.status).toBe(400)
    expect((await problemOf(missing)).type).toBe(`${PROBLEM_BASE}scope-missing`)
    expect((await deposit('header:X-Tenant', key, { 'x-tenant': 'acme' })).status).toBe(201)
    expect((await deposit('header:X-Tenant', key, { 'x-tenant': 'globex' })).headers.get('idempotent-replayed')).toBeNull()
    const shared = newKey()
    expect((await deposit('none', shared, { authorization: 'Bearer a' })).status).toBe(201)
    expect((await deposit('none', shared, { authorization: 'Bearer b' })).headers.get('idempotent-replayed')).toBe('true')
    const stats = await origin!.stats()
    expect(Object.values(stats.byRequestId).reduce((n, r) => n + r.applied, 0)).toBe(3)
  })
})
