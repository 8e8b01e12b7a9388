import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import gateway, { buildGateway, parseGatewayConfig } from '../../src/gateway.js'
import type { GatewayConfig } from '../../src/gateway/config.js'
import { type FarmOrigin, startOrigins } from '../farm.js'
import { newKey, problemOf } from '../helpers.js'
import { commitsUnderControl, watch } from '../commits-under-control.js'

const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext
const call = (config: unknown, path: string, init: RequestInit = {}, extra: Record<string, string> = {}) =>
  gateway.fetch!(new Request(`http://gateway.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>, { ONCE: env.ONCE, ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET, ONCE_CONFIG: typeof config === 'string' ? config : JSON.stringify(config), ...extra }, ctx)

function configFor(origins: FarmOrigin[]): GatewayConfig {
  return {
    origins: origins.map(({ name, url }) => ({ name, url })),
    routes: [
      { path: '/accounts/:id/*', methods: ['POST'], strategy: 'replicate', domain: 'param:id', timeoutMs: 1000, deadlineMs: 3000 },
      { path: '/accounts/*', methods: ['GET'], strategy: 'hedge', hedgeAfterMs: 50 },
    ],
    keys: { leaseMs: 3000 },
  }
}
const eu = [{ name: 'eu', url: 'https://eu.example' }]
const oneRoute = (route: object, extra: object = {}) => ({ origins: eu, routes: [route], ...extra })
const deposit = (config: GatewayConfig, account: string, key: string, amount = 100) =>
  call(config, `/accounts/${account}/deposits`, { method: 'POST', headers: { authorization: 'Bearer caller-1', 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: JSON.stringify({ amount }) })

describe('the config-driven gateway', () => {
  it('serves the configured routes: replicated writes once per key, hedged reads', async () => {
    const origins = await startOrigins(['eu', 'us', 'ap'])
    const config = configFor(origins)
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const key = newKey()
    const first = await deposit(config, account, key)
    expect(first.status).toBe(201)
    expect(first.headers.get('once-origin')).toMatch(/eu|us|ap/)
    const again = await deposit(config, account, key)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    const read = await call(config, `/accounts/${account}`)
    expect(read.status).toBe(200)
    expect(await read.json()).toMatchObject({ id: account })
    expect((await call(config, '/nowhere')).status).toBe(404)
  })

  it.each([
    ['not JSON', '{"origins": [', /ONCE_CONFIG.*not valid JSON/],
    ['no origins', { origins: [], routes: [{ path: '/*' }] }, /origins: expected at least 1/],
    ['a bad strategy', { origins: [{ name: 'eu', url: 'https://eu.example' }], routes: [{ path: '/*', strategy: 'fastest' }] }, /routes\.0\.strategy/],
    ['an unknown origin', { origins: [{ name: 'eu', url: 'https://eu.example' }], routes: [{ path: '/*', origins: ['us'] }] }, /routes\.0\.origins: no origin is named "us"/],
    ['a domain without replicate', { origins: [{ name: 'eu', url: 'https://eu.example' }], routes: [{ path: '/a/:id', domain: 'param:id' }] }, /routes\.0\.domain/],
    ['an unknown field', { origins: [{ name: 'eu', url: 'https://eu.example' }], routes: [{ path: '/*' }], retries: 3 }, /retries: unrecognized option/],
    // The scope is stored with every record and sent to origins: a credential header's value would be kept as it is.
    ['a credential header as the scope', { origins: [{ name: 'eu', url: 'https://eu.example' }], routes: [{ path: '/*' }], keys: { scope: 'header:Authorization' } }, /keys\.scope: a credential header .* would be stored as it is/],
    ['credentials in an origin URL (not sent; stored in relays, shown on the status page)', { origins: [{ name: 'eu', url: 'https://svc:hunter2@eu.example' }], routes: [{ path: '/*' }] }, /origins\.0\.url: expected no credentials in the URL/],
    ['a cookie as the scope', { origins: [{ name: 'eu', url: 'https://eu.example' }], routes: [{ path: '/*' }], keys: { scope: 'header:cookie' } }, /keys\.scope: a credential header/],
    // once() gives a write up at keys.maxRunMs: the default deadline (8000) is checked as one written out is.
    ['keys.maxRunMs below the default deadline of a write route', oneRoute({ path: '/a/*', methods: ['POST'] }, { keys: { maxRunMs: 2000 } }), /routes\.0\.deadlineMs \(8000, the default\): expected at most keys\.maxRunMs \(2000\)/],
    ['a deadline above keys.maxRunMs', oneRoute({ path: '/a/*', methods: ['POST'], deadlineMs: 8000 }, { keys: { maxRunMs: 2000 } }), /routes\.0\.deadlineMs: expected at most keys\.maxRunMs \(2000\)/],
    ['a proxy credential as the scope', { origins: [{ name: 'eu', url: 'https://eu.example' }], routes: [{ path: '/*' }], keys: { scope: 'header:PROXY-AUTHORIZATION' } }, /keys\.scope: a credential header/],
    [
      'two ordered routes to different origins (their domain names would share one log)',
      {
        origins: [{ name: 'a1', url: 'https://a1.example' }, { name: 'a2', url: 'https://a2.example' }, { name: 'b1', url: 'https://b1.example' }],
        routes: [
          { path: '/accounts/:id/*', strategy: 'replicate', domain: 'param:id', origins: ['a1', 'a2'] },
          { path: '/carts/:id/*', strategy: 'replicate', domain: 'param:id', origins: ['b1'] },
        ],
      },
      /routes\.1\.origins: routes\.0 and routes\.1 both order writes by domain, to different origins \(a1, a2 \/ b1\)/,
    ],
    // A path Hono's router cannot compile would throw at every request (the status page too): named at start-up.
    ['a regex parameter that is not a regular expression', oneRoute({ path: '/a/:id{[}' }), /routes\.0\.path: Hono cannot compile it \(.*regular expression/],
    ['an unbalanced group in a regex parameter', oneRoute({ path: '/a/:id{a(}' }), /routes\.0\.path: Hono cannot compile it/],
    ['a regex parameter Hono rewrites into a broken one (a named group)', oneRoute({ path: '/a/:id{(?<n>a)}' }), /routes\.0\.path: Hono cannot compile it/],
    ['a bad path on a later route', { origins: eu, routes: [{ path: '/ok/*' }, { path: '/a/:id{a\\}' }] }, /routes\.1\.path: Hono cannot compile it/],
    // Braces Hono does not read as a parameter's regex are literal text no request path holds: the route never matches.
    ['an unclosed regex parameter', oneRoute({ path: '/a/:id{[0-9]+' }), /routes\.0\.path: the "\{" at 6 is never closed/],
    ['a parameter in braces (OpenAPI style)', oneRoute({ path: '/accounts/{id}/*' }), /routes\.0\.path: a "\{" opens only a parameter's regex.*write a path parameter as :id/],
    ['a closing brace with no opening one', oneRoute({ path: '/a/:id}' }), /routes\.0\.path: the "\}" at 6 closes nothing/],
    ['text after a regex parameter', oneRoute({ path: '/a/:id{[0-9]+}x' }), /routes\.0\.path: a parameter's regex ends its segment/],
    ['an empty regex parameter', oneRoute({ path: '/a/:id{}' }), /routes\.0\.path: the regex of :id is empty/],
    // A keyless write has no request id for once() to give: hedge and replicate cannot send it (failover can).
    ['keyless writes on a hedge route', oneRoute({ path: '/a/*', methods: ['POST'], strategy: 'hedge' }, { keys: { required: false } }), /routes\.0\.strategy: "hedge" sends a write only under its idempotency key .* keys\.required is false/],
    ['keyless writes on a replicate route', oneRoute({ path: '/a/:id/*', strategy: 'replicate', domain: 'param:id' }, { keys: { required: false } }), /routes\.0\.strategy: "replicate" sends a write only under its idempotency key .* keys\.required is false/],
    // An option no strategy of the route reads would be ignored (as a domain without replicate is refused).
    ['ackQuorum on a failover route', oneRoute({ path: '/a/*', methods: ['POST'], strategy: 'failover', ackQuorum: 'all' }), /routes\.0\.ackQuorum: read only by "replicate" writes; this route sends POST by "failover"/],
    ['ackQuorum on a route with the default strategy', oneRoute({ path: '/a/*', ackQuorum: 'majority' }), /routes\.0\.ackQuorum: .*this route sends GET, HEAD by "hedge" and POST, PUT, PATCH, DELETE by "failover"/],
    ['ackQuorum on a read-only replicate route (its reads are hedged)', oneRoute({ path: '/a/*', methods: ['GET'], strategy: 'replicate', ackQuorum: 'all' }), /routes\.0\.ackQuorum: .*this route sends GET by "hedge"/],
    ['logRetentionMs on a hedge route', oneRoute({ path: '/a/*', strategy: 'hedge', logRetentionMs: 1000 }), /routes\.0\.logRetentionMs: read only by "replicate" writes/],
    ['hedgeAfterMs on a failover route', oneRoute({ path: '/a/*', strategy: 'failover', hedgeAfterMs: 50 }), /routes\.0\.hedgeAfterMs: read only by "hedge" sends .*this route sends POST, PUT, PATCH, DELETE by "failover"/],
    ['hedgeAfterMs on a write-only replicate route', oneRoute({ path: '/a/:id/*', strategy: 'replicate', domain: 'param:id', hedgeAfterMs: 50 }), /routes\.0\.hedgeAfterMs: .*by "replicate"/],
    // A cap the config does not show: the deadline (default 8000) bounds each attempt, once()'s maxRunMs bounds a write.
    ['timeoutMs above the default deadline', oneRoute({ path: '/a/*', timeoutMs: 20_000 }), /routes\.0\.timeoutMs: expected at most deadlineMs \(8000, the default\)/],
    ['deadlineMs above the default maxRunMs on a write route', oneRoute({ path: '/a/*', methods: ['POST'], deadlineMs: 60_000 }), /routes\.0\.deadlineMs: expected at most keys\.maxRunMs \(30000, the default\)/],
    ['deadlineMs above keys.maxRunMs on a write route', oneRoute({ path: '/a/*', deadlineMs: 20_000 }, { keys: { maxRunMs: 10_000 } }), /routes\.0\.deadlineMs: expected at most keys\.maxRunMs \(10000\)/],
    ['more origins than proxy() takes', { origins: Array.from({ length: 17 }, (_, n) => ({ name: `o${n}`, url: `https://o${n}.example` })), routes: [{ path: '/*' }] }, /ONCE_CONFIG options: origins: expected at most 16 items/],
    // Every gateway write is a relay, stored before it is sent: its body is capped at MAX_RELAY_BODY_BYTES whatever maxBodyBytes says.
    ['keys.maxBodyBytes above the relay limit', oneRoute({ path: '/*' }, { keys: { maxBodyBytes: 4 * 1024 * 1024 } }), /keys\.maxBodyBytes: expected at most 1048576 bytes/],
    // Hono answers HEAD with a route's GET: a HEAD without GET is never matched.
    ['HEAD without GET', oneRoute({ path: '/a/*', methods: ['HEAD'] }), /routes\.0\.methods: HEAD is answered by the route's GET .* add GET/],
    ['keys.answerFirst not a boolean', oneRoute({ path: '/*' }, { keys: { answerFirst: 'yes' } }), /keys\.answerFirst: .*expected boolean/],
    ['HEAD without GET, with a write', oneRoute({ path: '/a/*', methods: ['HEAD', 'POST'] }), /routes\.0\.methods: HEAD is answered by the route's GET/],
  ])('answers every request with a 500 problem, naming the bad field to a caller with the status token: %s', async (_name, config, message) => {
    const token = { ONCE_STATUS_TOKEN: 'status-token-for-tests' }
    const res = await call(config, '/accounts/x', { headers: { authorization: 'Bearer status-token-for-tests' } }, token)
    expect(res.status).toBe(500)
    const p = await problemOf(res)
    expect(p.detail).toMatch(message)
    const anyone = await problemOf(await call(config, '/accounts/x', {}, token))
    expect(anyone).toMatchObject({ type: p.type, detail: expect.stringMatching(/^The gateway's configuration is invalid; the Worker's log says why/) })
    expect(JSON.stringify(p)).not.toMatch(/at .*\.ts:\d+/) // no stack trace
    expect(() => parseGatewayConfig(config)).toThrow(message)
  })

  it('accepts the neighbours of what is refused: regex parameters Hono compiles, options a strategy of the route reads, limits within their caps', () => {
    const ok = (config: unknown) => expect(() => parseGatewayConfig(config)).not.toThrow()
    for (const path of ['/a/:id{[0-9]+}', '/a/:id{[0-9]{2}}/b', '/a/:id{(a|b)}', '/a/:p{.+/.+}', '/a/:id{[}]}/x', '/a/:id{[0-9]+}?', '/a/:id?', '/a/:id/*', '/*']) ok(oneRoute({ path }))
    ok(oneRoute({ path: '/a/*' }, { keys: { required: false } })) // the default strategy fails writes over
    ok(oneRoute({ path: '/a/*', methods: ['POST'], strategy: 'failover' }, { keys: { required: false } }))
    ok(oneRoute({ path: '/a/*', strategy: 'hedge' }, { keys: { required: false } })) // GET and HEAD: no key needed
    ok(oneRoute({ path: '/a/*', methods: ['POST'], strategy: 'hedge' }, { keys: { required: true } }))
    ok(oneRoute({ path: '/a/:id/*', strategy: 'replicate', domain: 'param:id', ackQuorum: 'all', logRetentionMs: 0 }))
    ok(oneRoute({ path: '/a/:id/*', methods: ['GET', 'POST'], strategy: 'replicate', domain: 'param:id', hedgeAfterMs: 50 })) // its GET is hedged
    ok(oneRoute({ path: '/a/*', hedgeAfterMs: 'auto' })) // the default strategy hedges GET
    ok(oneRoute({ path: '/a/*', methods: ['POST'], strategy: 'hedge', hedgeAfterMs: 50 }))
    ok(oneRoute({ path: '/a/*', timeoutMs: 8000 }))
    ok(oneRoute({ path: '/a/*', timeoutMs: 20_000, deadlineMs: 25_000 }))
    ok(oneRoute({ path: '/a/*', methods: ['GET'], deadlineMs: 600_000 })) // a read runs outside once()
    ok(oneRoute({ path: '/a/*', deadlineMs: 60_000 }, { keys: { maxRunMs: 60_000 } }))
    ok(oneRoute({ path: '/a/*', methods: ['POST'], deadlineMs: 2000, timeoutMs: 1000 }, { keys: { maxRunMs: 2000 } }))
    ok(oneRoute({ path: '/a/*', methods: ['GET'] }, { keys: { maxRunMs: 2000 } })) // a read runs outside once()
    ok({ origins: Array.from({ length: 16 }, (_, n) => ({ name: `o${n}`, url: `https://o${n}.example` })), routes: [{ path: '/*' }] })
    ok(oneRoute({ path: '/*' }, { keys: { maxBodyBytes: 1024 * 1024 } }))
    for (const answerFirst of [true, false]) ok(oneRoute({ path: '/a/:id/*', methods: ['POST'], strategy: 'replicate', domain: 'param:id' }, { keys: { answerFirst } }))
    for (const methods of [['GET'], ['GET', 'HEAD'], ['HEAD', 'GET', 'POST'], ['POST']]) ok(oneRoute({ path: '/a/*', methods }))
  })

  it('a route path Hono cannot compile: the status page answers the same 500 problem as for any bad field, and buildGateway compiles the routes', async () => {
    const config = oneRoute({ path: '/a/:id{[}', methods: ['GET'] })
    const res = await call(config, '/__once/status', { headers: { authorization: 'Bearer status-token-for-tests' } }, { ONCE_STATUS_TOKEN: 'status-token-for-tests' })
    expect(res.status).toBe(500)
    expect((await problemOf(res)).detail).toMatch(/routes\.0\.path: Hono cannot compile it/)
    // Past the config's checks, any path the router rejects throws at build time (inside the Worker's try), not at a request.
    expect(() => buildGateway(config as GatewayConfig)).toThrow(/ONCE_CONFIG options: routes: Hono cannot compile the routes/)
  })

  it('serves HEAD by a GET route, and a keyless write on a failover route with keys.required false', async () => {
    const [origin] = await startOrigins(['eu'])
    const config = { origins: [{ name: 'eu', url: origin!.url }], routes: [{ path: '/accounts/*', methods: ['GET', 'POST'] }], keys: { required: false } }
    const head = await call(config, `/accounts/acct-${crypto.randomUUID().slice(0, 8)}`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('once-origin')).toBe('eu')
    const write = await call(config, `/accounts/acct-${crypto.randomUUID().slice(0, 8)}/deposits`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":5}' })
    expect(write.status).toBe(201)
  })

  it('keys.answerFirst: a write is answered before its commit lands by default, and after it with false', async () => {
    const [origin] = await startOrigins(['eu'])
    for (const answerFirst of [undefined, true, false]) {
      const config = { origins: [{ name: 'eu', url: origin!.url }], routes: [{ path: '/accounts/*', methods: ['POST'] }], keys: answerFirst === undefined ? {} : { answerFirst } }
      const control = commitsUnderControl()
      control.set('hold')
      const account = `af-${crypto.randomUUID().slice(0, 8)}`
      const init = { method: 'POST', headers: { authorization: 'Bearer caller-1', 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{"amount":7}' }
      const env_ = { ONCE: control.ns, ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET, ONCE_CONFIG: JSON.stringify(config) }
      const pending = Promise.resolve(gateway.fetch!(new Request(`http://gateway.test/accounts/${account}/deposits`, init) as Request<unknown, IncomingRequestCfProperties>, env_, ctx))
      const watched = watch(pending)
      if (answerFirst === false) {
        await control.sent()
        // The commit is held: an answer that does not wait for it would arrive within a few turns (it must not).
        await scheduler.wait(20)
        expect(watched.settled()).toBe(false)
        control.open()
        expect((await pending).status).toBe(201)
      } else {
        // Answered while its commit is held; the commit goes out right after.
        expect((await pending).status, String(answerFirst)).toBe(201)
        await control.sent()
        control.open()
      }
      expect((await origin!.stats()).balances[account]).toBe(7)
    }
  })

  it('accepts a tenant header, authorization and none as the scope', () => {
    for (const scope of ['header:X-Account', 'header:x-authorization-tenant', 'authorization', 'none']) {
      expect(() => parseGatewayConfig({ origins: [{ name: 'eu', url: 'https://eu.example' }], routes: [{ path: '/*' }], keys: { scope } })).not.toThrow()
    }
  })

  it('accepts ordered routes that share their origins (listed in any order, or all by default), and unordered routes to others', () => {
    const origins = [{ name: 'a1', url: 'https://a1.example' }, { name: 'a2', url: 'https://a2.example' }]
    const ordered = (path: string, names?: string[]) => ({ path, strategy: 'replicate' as const, domain: 'param:id', ...(names ? { origins: names } : {}) })
    expect(() => parseGatewayConfig({ origins, routes: [ordered('/accounts/:id/*', ['a1', 'a2']), ordered('/carts/:id/*', ['a2', 'a1']), ordered('/orders/:id/*')] })).not.toThrow()
    expect(() => parseGatewayConfig({ origins, routes: [ordered('/accounts/:id/*'), { path: '/search/*', strategy: 'hedge', origins: ['a1'] }] })).not.toThrow()
    // Reads are not ordered: a GET-only replicate route with a domain keeps no log.
    expect(() => parseGatewayConfig({ origins, routes: [ordered('/accounts/:id/*'), { ...ordered('/carts/:id/*', ['a1']), methods: ['GET'] }] })).not.toThrow()
  })

  it('GET /__once/status: 401 problem without the token; JSON with origins, domains and counts with it', async () => {
    const origins = await startOrigins(['eu', 'us'])
    const config = configFor(origins)
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    await deposit(config, account, newKey())
    const token = { ONCE_STATUS_TOKEN: 'status-token-for-tests' }
    expect((await call(config, '/__once/status', {}, token)).status).toBe(401)
    expect((await call(config, '/__once/status', { headers: { authorization: 'Bearer wrong' } }, token)).status).toBe(401)
    expect((await call(config, '/__once/status')).status).toBe(401) // no token configured: closed
    const res = await call(config, '/__once/status', { headers: { authorization: 'Bearer status-token-for-tests' } }, token)
    expect(res.status).toBe(200)
    const status = (await res.json()) as { origins: { name: string; state: string }[]; domains: { domain: string; head: number }[]; counts: { admits: number } }
    expect(status.origins.map((o) => [o.name, o.state])).toEqual([
      ['eu', 'up'],
      ['us', 'up'],
    ])
    // Domains and counts come from the status object as objects report them (test/gateway/status.test.ts drives that).
    expect(Array.isArray(status.domains)).toBe(true)
    expect(status.counts).toMatchObject({ admits: expect.any(Number), mismatches: expect.any(Number) })
    const html = await call(config, '/__once/status', { headers: { authorization: 'Bearer status-token-for-tests', accept: 'text/html' } }, token)
    expect(html.headers.get('content-type')).toMatch(/text\/html/)
    expect(await html.text()).toContain('<table id="origins">')
  })
})
