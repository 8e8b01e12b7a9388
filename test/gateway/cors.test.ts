/**
 * Browsers on other origins behind the gateway (`cors` in ONCE_CONFIG): the replay a browser's retry exists for,
 * and every answer the gateway makes itself, carry the CORS headers; preflights are answered; the block is checked
 * at start-up.
 */
import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import gateway, { parseGatewayConfig } from '../../src/gateway.js'
import { PROBLEM_BASE } from '../../src/shared/problem.js'
import { startOrigins } from '../farm.js'
import { newKey, problemOf } from '../helpers.js'

const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext
const SHOP = 'https://shop.example'
const call = (config: unknown, path: string, init: RequestInit) =>
  gateway.fetch!(new Request(`http://gateway.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>, { ONCE: env.ONCE, ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET, ONCE_CONFIG: JSON.stringify(config) }, ctx)

async function shopGateway(cors: object = { origins: [SHOP] }) {
  const [eu] = await startOrigins(['eu'])
  const config = { origins: [{ name: 'eu', url: eu!.url }], routes: [{ path: '/accounts/*', methods: ['GET', 'POST'], timeoutMs: 1000, deadlineMs: 3000 }], cors }
  const account = `acct-${crypto.randomUUID().slice(0, 8)}`
  const deposit = (key: string | undefined, headers: Record<string, string> = {}) =>
    call(config, `/accounts/${account}/deposits`, {
      method: 'POST',
      headers: { origin: SHOP, authorization: 'Bearer t', 'content-type': 'application/json', ...(key ? { 'idempotency-key': `"${key}"` } : {}), ...headers },
      body: '{"amount":100}',
    })
  return { config, deposit, balance: async () => (await eu!.stats()).balances[account] }
}

describe('the gateway: cors', () => {
  it('a replay carries the CORS headers the first answer had, and exposes what the client reads', async () => {
    const { deposit, balance } = await shopGateway()
    const key = newKey()
    const first = await deposit(key)
    const replay = await deposit(key)
    expect(first.status).toBe(201)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    for (const res of [first, replay]) {
      expect(res.headers.get('access-control-allow-origin')).toBe(SHOP)
      expect(res.headers.get('access-control-expose-headers')).toMatch(/Retry-After.*Idempotent-Replayed/)
      expect(res.headers.get('vary')).toMatch(/origin/i)
    }
    expect(await balance()).toBe(100)
  })

  it("the gateway's own problems carry them too: key-missing, scope-missing, key-reused, not-found", async () => {
    const { config, deposit } = await shopGateway()
    const key = newKey()
    await deposit(key)
    const answers = [
      await deposit(undefined),
      await deposit(newKey(), { authorization: '' }),
      await call(config, '/accounts/x/deposits', { method: 'POST', headers: { origin: SHOP, authorization: 'Bearer t', 'idempotency-key': `"${key}"` }, body: '{"amount":1}' }),
      await call(config, '/nowhere', { headers: { origin: SHOP } }),
    ]
    expect(await Promise.all(answers.map(async (r) => [(await problemOf(r)).type, r.headers.get('access-control-allow-origin')]))).toEqual(
      ['key-missing', 'scope-missing', 'key-reused', 'not-found'].map((t) => [`${PROBLEM_BASE}${t}`, SHOP]),
    )
  })

  it('answers a preflight itself: the methods, the asked headers, max-age and credentials as configured', async () => {
    const { config } = await shopGateway({ origins: [SHOP], credentials: true, maxAgeSeconds: 600 })
    const res = await call(config, '/accounts/a/deposits', {
      method: 'OPTIONS',
      headers: { origin: SHOP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'idempotency-key, content-type, authorization' },
    })
    expect(res.status).toBe(204)
    expect(Object.fromEntries([...res.headers].filter(([h]) => h.startsWith('access-control-')))).toMatchObject({
      'access-control-allow-origin': SHOP,
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET,HEAD,POST,PUT,PATCH,DELETE',
      'access-control-allow-headers': 'idempotency-key,content-type,authorization',
      'access-control-max-age': '600',
    })
  })

  it('gives an origin it does not list no Access-Control-Allow-Origin, and drops what the origin said itself', async () => {
    const config = { origins: [{ name: 'eu', url: 'https://eu.cors-origin.test' }], routes: [{ path: '/*', methods: ['POST'] }], signing: 'off', cors: { origins: [SHOP] } }
    const real = globalThis.fetch
    // An origin that does CORS itself, for any caller: behind the gateway only the gateway's word counts.
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init)
      if (new URL(req.url).host !== 'eu.cors-origin.test') return real(input, init)
      await req.arrayBuffer()
      return new Response('{"ok":true}', { status: 201, headers: { 'content-type': 'application/json', 'once-applied': '?1', 'access-control-allow-origin': '*' } })
    }) as typeof fetch
    try {
      const key = newKey()
      const send = (origin: string) => call(config, '/deposits', { method: 'POST', headers: { origin, authorization: 'Bearer t', 'idempotency-key': `"${key}"` }, body: '{}' })
      const evil = await send('https://evil.example')
      const shop = await send(SHOP)
      expect([evil.status, evil.headers.get('access-control-allow-origin')]).toEqual([201, null])
      expect([shop.headers.get('idempotent-replayed'), shop.headers.get('access-control-allow-origin')]).toEqual(['true', SHOP])
    } finally {
      globalThis.fetch = real
    }
  })

  const origins = [{ name: 'eu', url: 'https://eu.example' }]
  it.each([
    ['an origin with a path', { origins: ['https://shop.example/'] }, /cors\.origins\.0: expected an origin as a browser sends it/],
    ['an origin without a scheme', { origins: ['shop.example'] }, /cors\.origins\.0: expected an origin/],
    ['no origins', { origins: [] }, /cors\.origins/],
    ['credentials with any origin', { origins: '*', credentials: true }, /cors\.credentials: browsers refuse credentials with origins "\*"/],
    ['an unknown field', { origins: [SHOP], exposeHeaders: ['X-A'] }, /cors\.exposeHeaders: unrecognized option/],
  ])('refuses a cors block with %s at start-up, naming it', (_name, cors, message) => {
    expect(() => parseGatewayConfig({ origins, routes: [{ path: '/*' }], cors })).toThrow(message)
  })

  it('refuses OPTIONS in a route with a cors block (the gateway answers every OPTIONS itself); accepts valid blocks', () => {
    expect(() => parseGatewayConfig({ origins, routes: [{ path: '/*', methods: ['GET', 'OPTIONS'] }], cors: { origins: [SHOP] } })).toThrow(/routes\.0\.methods: with a cors block/)
    for (const cors of [{ origins: '*' }, { origins: [SHOP, 'http://localhost:5173'], credentials: true, maxAgeSeconds: 0 }]) {
      expect(() => parseGatewayConfig({ origins, routes: [{ path: '/*' }], cors })).not.toThrow()
    }
  })
})
