import { env } from 'cloudflare:workers'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { buildGateway, parseGatewayConfig } from '../../src/gateway.js'
import { ownOrigin } from './own-origin.js'

// Review s31 (input), finding 5: the config check refused routes that can never serve a request (a stray brace: "literal
// text that no request path holds ... a route that never matches"; HEAD without GET) and options no send reads, but two
// neighbours of that rule got through and the operator found out in production: a path with "?" or "#" outside a
// :param?, and a route an earlier one fully serves ("first match wins"). Both are refused at start-up, naming the route.
const eu = { name: 'eu', url: 'https://eu.unreachable-routes.test' }
const us = { name: 'us', url: 'https://us.unreachable-routes.test' }
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
    globalThis.fetch = ownOrigin(realFetch, 'unreachable-routes', (req) => {
      sent.push(new URL(req.url).host)
      return new Response('ok', { status: 201 })
    })
    try {
      const res = await app.request('/accounts/a', { method: 'POST', headers: { authorization: 'Bearer c', 'idempotency-key': `"${crypto.randomUUID()}"` }, body: 'x' }, { ONCE: env.ONCE })
      expect(res.status).toBe(201)
    } finally {
      globalThis.fetch = realFetch
    }
    expect(sent).toEqual(['eu.unreachable-routes.test'])
    expect(() => parseGatewayConfig(config)).toThrow(/routes\.1: no request ever reaches it: its POST requests on "\/accounts\/\*" all match routes\.0/)
  })

  it.each([
    ['the same pattern, parameters renamed', [{ path: '/a/:id', methods: ['GET'] }, { path: '/a/:key', methods: ['GET'] }], /routes\.1: no request ever reaches it/],
    ['a catch-all before a narrower route', [{ path: '/*' }, { path: '/accounts/*', methods: ['POST'] }], /routes\.1: no request ever reaches it: .* routes\.0, which comes first \("\/\*"/],
    ['a wildcard before its own prefix', [{ path: '/accounts/*', methods: ['GET'] }, { path: '/accounts', methods: ['GET'] }], /routes\.1: no request/],
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
    // After a parameter, a wildcard does not keep first-match order in hono 4.6 (the oldest the peer range takes): there
    // the later route gets /a/x (hono 4.13 sends it to the first), so it is not refused.
    ['a parameter and a wildcard before the parameter alone', [{ path: '/a/:p/*', methods: ['GET'] }, { path: '/a/:q', methods: ['GET'] }]],
    ['a parameter and a wildcard before a literal under them', [{ path: '/:p/*', methods: ['POST'] }, { path: '/:q/a', methods: ['POST'] }]],
    ['a regex narrower than the parameter after it', [{ path: '/a/:id{[0-9]+}', methods: ['GET'] }, { path: '/a/:id', methods: ['GET'] }]],
  ])('accepted: %s', (_name, routes) => {
    expect(parse(routes)).not.toThrow()
  })

  // Paths of literal segments from a small pool, plain parameters and a final wildcard; requests fill parameters and
  // the wildcard with values no literal is, at every depth, so one of them reaches a route unless earlier routes take
  // every path it matches. Routed by the Hono under test (the hono-min project: 4.6, the oldest the peer range takes).
  const segment = fc.constantFrom('a', 'b', ':p', ':q')
  const path = fc.tuple(fc.array(segment, { minLength: 0, maxLength: 3 }), fc.boolean()).map(([segs, star]) => `/${[...segs, ...(star || segs.length === 0 ? ['*'] : [])].join('/')}`)
  const route = fc.record({ path, methods: fc.subarray(['GET', 'POST', 'PUT'] as const, { minLength: 1 }) })
  const fills = (p: string) => [null, '', 'v2', 'v2/v3', 'v2/v3/v4', 'v2/v3/v4/v5'].map((tail) => p.replace(/:[a-z]+/g, 'v1').replace(tail === null ? /\/?\*$/ : '*', tail ?? '') || '/')
  const refusal = (routes: unknown[]) => {
    try {
      parse(routes)()
      return undefined
    } catch (err) {
      return (err as Error).message
    }
  }
  async function reaches(routes: { path: string; methods: readonly string[] }[], k: number, method: string): Promise<boolean> {
    const app = new Hono()
    routes.forEach((r, n) => app.on([...r.methods], r.path, (c) => c.text(String(n))))
    for (const url of fills(routes[k]!.path)) if ((await (await app.request(url, { method })).text()) === String(k)) return true
    return false
  }

  it('any list of routes: a route refused is one whose requests (the methods named) never reach it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(route, { minLength: 1, maxLength: 4 }), async (routes) => {
        const refused = refusal(routes)
        if (refused === undefined) return
        const named = /routes\.(\d+)(\.methods)?: (?:no request ever reaches it|its ([A-Z, ]+) requests)/.exec(refused)
        expect(named, refused).not.toBeNull()
        const k = Number(named![1])
        const taken = named![3] ? named![3].split(', ') : routes[k]!.methods
        for (const m of taken) expect(await reaches(routes, k, m), `${m} routes.${k}: ${refused}`).toBe(false)
      }),
      { numRuns: 300 },
    )
  })

  it('any accepted list of routes, and a later copy of one of them (parameters renamed, some of its methods): the copy is refused, naming it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(route, { minLength: 1, maxLength: 3 }), fc.nat(), fc.nat(), async (routes, pick, drop) => {
        fc.pre(refusal(routes) === undefined)
        const original = routes[pick % routes.length]!
        const methods = original.methods.filter((_, n) => original.methods.length === 1 || n !== drop % original.methods.length)
        const copy = { path: original.path.replace(/:p\b/g, ':renamed'), methods }
        const all = [...routes, copy]
        expect(refusal(all)).toMatch(new RegExp(`routes\\.${routes.length}: no request ever reaches it`))
        for (const m of methods) expect(await reaches(all, routes.length, m)).toBe(false)
      }),
      { numRuns: 200 },
    )
  })
})
