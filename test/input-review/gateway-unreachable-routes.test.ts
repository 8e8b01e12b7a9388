import { env } from 'cloudflare:workers'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { buildGateway, parseGatewayConfig } from '../../src/gateway.js'

// Review s31 (input), finding 5: the config check refused routes that can never serve a request (a stray brace: "literal
// text that no request path holds ... a route that never matches"; HEAD without GET) and options no send reads, but two
// neighbours of that rule got through and the operator found out in production: a path with "?" or "#" outside a
// :param?, and a route an earlier one fully serves ("first match wins"). Both are refused at start-up, naming the route.
const eu = { name: 'eu', url: 'https://eu.example' }
const us = { name: 'us', url: 'https://us.example' }
const parse = (routes: unknown[]) => () => parseGatewayConfig({ origins: [eu, us], routes, signing: 'off' })

describe('a gateway route no request can reach is refused at start-up, naming it', () => {
  it('a path with "?" or "#" outside a :param? (a request path never holds either: the route never matches)', async () => {
    for (const path of ['/orders?status=open', '/orders#recent', '/orders?', '/a/b?/c', '/a#', '/a/:id/x?', '/a/#/b']) {
      // What the gateway's router does with it: nothing ever matches.
      const app = new Hono().get(path, (c) => c.text('hit'))
      for (const url of ['/orders?status=open', '/orders', '/orders%3Fstatus=open', '/orders%23recent', '/a/b/c', '/a/1/x']) expect((await app.request(url)).status).toBe(404)
      expect(() => parseGatewayConfig({ origins: [eu], routes: [{ path, methods: ['GET'] }] }), path).toThrow(/routes\.0\.path: a "[?#]"/)
    }
    // Neighbours that do match: an optional parameter, after a regex too, and ? or # inside a parameter's regex.
    for (const path of ['/a/:id?', '/a/:id{[0-9]+}?', '/a/:id{ab?c}', '/a/:id{[^#]+}', '/a/:id?/b']) {
      expect(() => parseGatewayConfig({ origins: [eu], routes: [{ path, methods: ['GET'] }] }), path).not.toThrow()
    }
  })

  it('a route whose path and methods an earlier route already serves ("first match wins": it is never used)', async () => {
    // An operator moves the writes of /accounts/* to a second origin set, adding the route after the old one.
    const config = {
      origins: [eu, us],
      routes: [
        { path: '/accounts/*', methods: ['POST'], strategy: 'failover', origins: ['eu'] },
        { path: '/accounts/*', methods: ['POST'], strategy: 'failover', origins: ['us'] },
      ],
      signing: 'off',
    }
    // What the gateway did with it: every POST went to routes.0's origin (the second route built on its own).
    const { app } = buildGateway({ ...(JSON.parse(JSON.stringify(config)) as ReturnType<typeof parseGatewayConfig>) })
    const sent: string[] = []
    const realFetch = globalThis.fetch
    globalThis.fetch = (async (req: Request) => {
      sent.push(new URL(req.url).host)
      return new Response('ok', { status: 201 })
    }) as typeof fetch
    try {
      const res = await app.request('/accounts/a', { method: 'POST', headers: { authorization: 'Bearer c', 'idempotency-key': `"${crypto.randomUUID()}"` }, body: 'x' }, { ONCE: env.ONCE })
      expect(res.status).toBe(201)
    } finally {
      globalThis.fetch = realFetch
    }
    expect(sent).toEqual(['eu.example'])
    expect(() => parseGatewayConfig(config)).toThrow(/routes\.1: no request ever reaches it: its POST requests on "\/accounts\/\*" all match routes\.0/)
  })

  it.each([
    ['the same pattern, parameters renamed', [{ path: '/a/:id', methods: ['GET'] }, { path: '/a/:key', methods: ['GET'] }], /routes\.1: no request ever reaches it/],
    ['a catch-all before a narrower route', [{ path: '/*' }, { path: '/accounts/*', methods: ['POST'] }], /routes\.1: no request ever reaches it: .* routes\.0, which comes first \("\/\*"/],
    ['a wildcard before its own prefix', [{ path: '/accounts/*', methods: ['GET'] }, { path: '/accounts', methods: ['GET'] }], /routes\.1: no request/],
    ['a parameter and a wildcard before the parameter alone', [{ path: '/a/:p/*', methods: ['GET'] }, { path: '/a/:q', methods: ['GET'] }], /routes\.1: no request/],
    ['a wildcard before a parameter under it', [{ path: '/accounts/*', methods: ['GET'] }, { path: '/accounts/:id', methods: ['GET'] }], /routes\.1: no request/],
    ['a parameter before a literal in its place', [{ path: '/a/:id', methods: ['POST'] }, { path: '/a/b', methods: ['POST'] }], /routes\.1: no request/],
    ['a regex route under an earlier wildcard', [{ path: '/a/*', methods: ['GET'] }, { path: '/a/:id{[0-9]+}', methods: ['GET'] }], /routes\.1: no request/],
    ['some methods taken: the route is named by its methods', [{ path: '/a/*', methods: ['POST'] }, { path: '/a/*', methods: ['GET', 'POST'] }], /routes\.1\.methods: its POST requests on "\/a\/\*" never reach it: routes\.0/],
    ['HEAD is served by the GET route', [{ path: '/a/*', methods: ['GET'] }, { path: '/a/*', methods: ['GET', 'HEAD', 'PUT'] }], /routes\.1\.methods: its GET, HEAD requests/],
    ['a third route shadowed by the first', [{ path: '/a/*', methods: ['GET'] }, { path: '/b/*', methods: ['GET'] }, { path: '/a/x', methods: ['GET'] }], /routes\.2: no request ever reaches it: .* routes\.0/],
  ])('refused: %s', (_name, routes, message) => {
    expect(parse(routes)).toThrow(message)
  })

  it.each([
    ['other methods', [{ path: '/a/*', methods: ['GET'] }, { path: '/a/*', methods: ['POST'] }]],
    ['the narrower route first', [{ path: '/accounts/:id/*', methods: ['POST'] }, { path: '/accounts/*', methods: ['POST'] }, { path: '/*' }]],
    ['a sibling prefix', [{ path: '/accounts/*', methods: ['GET'] }, { path: '/accountsx/*', methods: ['GET'] }]],
    ['a literal before a parameter', [{ path: '/a/b', methods: ['GET'] }, { path: '/a/:id', methods: ['GET'] }]],
    ['a longer path than a parameter takes', [{ path: '/a/:id', methods: ['GET'] }, { path: '/a/:id/b', methods: ['GET'] }]],
    ['an optional parameter after a wildcard-free route', [{ path: '/a/:id', methods: ['GET'] }, { path: '/a/:id?', methods: ['GET'] }]],
    ['a regex narrower than the parameter after it', [{ path: '/a/:id{[0-9]+}', methods: ['GET'] }, { path: '/a/:id', methods: ['GET'] }]],
  ])('accepted: %s', (_name, routes) => {
    expect(parse(routes)).not.toThrow()
  })

  it('any list of routes: accepted, each route gets a request the earlier ones do not take; refused, the route named is taken', async () => {
    // Paths of literal segments from a small pool, plain parameters and a final wildcard; requests fill parameters and
    // the wildcard with values no literal is, so one of them reaches the route unless earlier routes take all it matches.
    const segment = fc.constantFrom('a', 'b', ':p', ':q')
    const path = fc.tuple(fc.array(segment, { minLength: 0, maxLength: 3 }), fc.boolean()).map(([segs, star]) => `/${[...segs, ...(star || segs.length === 0 ? ['*'] : [])].join('/')}`)
    const route = fc.record({ path, methods: fc.subarray(['GET', 'POST', 'PUT'] as const, { minLength: 1 }) })
    // The wildcard takes any number of segments, none too: each depth is tried, so a fixed-length earlier route cannot hide it.
    const fills = (p: string) => [null, '', 'v2', 'v2/v3', 'v2/v3/v4', 'v2/v3/v4/v5'].map((tail) => p.replace(/:[a-z]+/g, 'v1').replace(tail === null ? /\/?\*$/ : '*', tail ?? '') || '/')
    await fc.assert(
      fc.asyncProperty(fc.array(route, { minLength: 1, maxLength: 4 }), async (routes) => {
        const app = new Hono()
        routes.forEach((r, k) => app.on([...r.methods], r.path, (c) => c.text(String(k))))
        const reaches = async (k: number, method: string) => {
          for (const url of fills(routes[k]!.path)) if ((await (await app.request(url, { method })).text()) === String(k)) return true
          return false
        }
        let refused: string | undefined
        try {
          parse(routes)()
        } catch (err) {
          refused = (err as Error).message
        }
        if (refused === undefined) {
          for (const [k, r] of routes.entries()) for (const m of r.methods) expect(await reaches(k, m), `${m} ${r.path} (routes.${k}) of ${JSON.stringify(routes)}`).toBe(true)
          return
        }
        const named = /routes\.(\d+)(\.methods)?: (?:no request ever reaches it|its ([A-Z, ]+) requests)/.exec(refused)
        expect(named, refused).not.toBeNull()
        const k = Number(named![1])
        const taken = named![3] ? named![3].split(', ') : routes[k]!.methods
        for (const m of taken) expect(await reaches(k, m), `${m} routes.${k}: ${refused}`).toBe(false)
      }),
      { numRuns: 300 },
    )
  })
})
