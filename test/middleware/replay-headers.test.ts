import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { cors } from 'hono/cors'
import { requestId } from 'hono/request-id'
import { secureHeaders } from 'hono/secure-headers'
import { timing } from 'hono/timing'
import { describe, expect, it } from 'vitest'
import { once, type OnceOptions } from '../../src/index.js'
import { newKey } from '../helpers.js'

/**
 * A browser-facing API: cors() with credentials for two sites, secureHeaders(),
 * requestId() and timing() around once(), one user scope for both sites.
 * `bare` is the same route and stable area with no outer middleware, to see
 * what was stored.
 */
function api(options: OnceOptions = {}) {
  let runs = 0
  const handler = (c: import('hono').Context) => c.json({ run: ++runs }, 201, { location: '/orders/1', 'x-handler': 'yes' })
  const app = new Hono()
  app.use('*', cors({ origin: ['https://a.example', 'https://b.example'], credentials: true }))
  app.use('*', secureHeaders())
  app.use('*', requestId())
  app.use('*', timing())
  app.post('/orders', once({ scope: () => 'user-1', ...options }), handler)
  // The same middleware without once(): what cors() says to a caller on its own (hono 4.6 names its first site to any caller).
  app.post('/plain', (c) => c.text('plain'))
  const bare = new Hono().post('/orders', once({ scope: () => 'user-1', replayCache: false }), handler)
  const post = (target: Hono, key: string, headers: Record<string, string> = {}) =>
    target.request('/orders', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, ...headers }, body: '{}' }, env)
  return { app, bare, post, runs: () => runs }
}

describe.each([
  ['from the object', { replayCache: false } as OnceOptions],
  ['from the isolate cache', {} as OnceOptions],
])('a replay %s carries this caller’s outer headers, never the first caller’s (issue 16.4)', (_name, options) => {
  it('cors(): another allowed site gets its own origin; no Origin or a foreign one gets none', async () => {
    const { app, post, runs } = api(options)
    const key = newKey()
    const first = await post(app, key, { origin: 'https://a.example', 'x-request-id': 'req-a' })
    expect(first.status).toBe(201)
    expect(first.headers.get('access-control-allow-origin')).toBe('https://a.example')
    expect(first.headers.get('x-request-id')).toBe('req-a')

    const fromB = await post(app, key, { origin: 'https://b.example', 'x-request-id': 'req-b' })
    expect(fromB.headers.get('idempotent-replayed')).toBe('true')
    expect(fromB.headers.get('access-control-allow-origin')).toBe('https://b.example')
    expect(fromB.headers.get('x-request-id')).toBe('req-b')
    expect(fromB.headers.get('vary')).toBe('Origin')

    for (const headers of [{}, { origin: 'https://evil.example' }] as Record<string, string>[]) {
      const other = await post(app, key, headers)
      const plain = await app.request('/plain', { method: 'POST', headers }, env)
      expect(other.headers.get('idempotent-replayed')).toBe('true')
      expect(other.headers.get('access-control-allow-origin')).toBe(plain.headers.get('access-control-allow-origin'))
      expect(other.headers.get('x-request-id')).not.toBe('req-a')
    }
    // hono 4.7+: no Origin, no CORS answer at all.
    expect((await post(app, key)).headers.get('access-control-allow-origin') ?? 'none').toMatch(/none|https:\/\/a\.example/)
    expect(runs()).toBe(1)
  })

  it('secureHeaders() and timing() still answer on replays, once each; the handler’s own headers are replayed', async () => {
    const { app, post } = api(options)
    const key = newKey()
    await post(app, key, { origin: 'https://a.example' })
    const again = await post(app, key, { origin: 'https://b.example' })
    expect(again.headers.get('x-frame-options')).toBe('SAMEORIGIN')
    expect(again.headers.get('strict-transport-security')).toMatch(/max-age/)
    expect(again.headers.get('server-timing')).toMatch(/total/)
    expect(again.headers.get('server-timing')!.match(/total/g)).toHaveLength(1)
    expect(again.headers.get('location')).toBe('/orders/1')
    expect(again.headers.get('x-handler')).toBe('yes')
  })
})

describe('what is stored for replay (issue 16.4)', () => {
  it('is what the handler produced: no CORS, Vary, request id, timing or rate-limit header of the first caller', async () => {
    const { app, bare, post } = api({ replayCache: false })
    const key = newKey()
    await post(app, key, { origin: 'https://a.example', 'x-request-id': 'req-a' })
    const stored = await post(bare, key)
    expect(stored.headers.get('idempotent-replayed')).toBe('true')
    const names = [...stored.headers.keys()]
    expect(names.filter((n) => /^access-control-|^vary$|^x-request-id$|^server-timing$|^timing-allow-origin$/.test(n))).toEqual([])
    expect(stored.headers.get('location')).toBe('/orders/1')
  })

  it('leaves rate-limit headers to the limiter: RateLimit-* and X-RateLimit-* are not stored', async () => {
    let left = 10
    const limited = new Hono()
    limited.use('*', async (c, next) => {
      c.header('RateLimit-Remaining', String(--left))
      c.header('X-RateLimit-Remaining', String(left))
      await next()
    })
    limited.post('/orders', once({ scope: () => 'user-2', replayCache: false }), (c) => c.json({ ok: true }, 201))
    const key = newKey()
    const send = () => limited.request('/orders', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{}' }, env)
    expect((await send()).headers.get('ratelimit-remaining')).toBe('9')
    const again = await send()
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(again.headers.get('ratelimit-remaining')).toBe('8')
    expect(again.headers.get('x-ratelimit-remaining')).toBe('8')
  })

  it("a caller's cookie replaces a stored one of the same name, so a replay carries each cookie once (review s29 S6)", async () => {
    const app = new Hono()
    let session = 0
    app.use('*', async (c, next) => {
      c.header('set-cookie', `session=${++session}; Path=/`, { append: true })
      await next()
    })
    app.post('/c', once({ replayHeaders: ['set-cookie', 'content-type'], replayCache: false }), (c) => {
      c.header('set-cookie', 'cart=full', { append: true })
      return c.text('ok', 201)
    })
    const key = newKey()
    const send = () => app.request('/c', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: 'x' }, env)
    expect((await send()).headers.getSetCookie().sort()).toEqual(['cart=full', 'session=1; Path=/'])
    const again = await send()
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(again.headers.getSetCookie().sort()).toEqual(['cart=full', 'session=2; Path=/'])
  })

  it('a body stored already encoded keeps its Content-Encoding whatever replayHeaders lists: the replay is readable (review s29 S14)', async () => {
    const app = new Hono()
    app.post('/r', once({ replayHeaders: ['location'], replayCache: false }), async () => {
      const gzip = await new Response(new Blob(['{"ok":true}']).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer()
      return new Response(gzip, { status: 201, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', location: '/r/1' }, encodeBody: 'manual' } as ResponseInit)
    })
    const key = newKey()
    const send = () => app.request('/r', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: 'x' }, env)
    const first = new Uint8Array(await (await send()).arrayBuffer())
    const again = await send()
    expect([again.headers.get('idempotent-replayed'), again.headers.get('content-encoding'), again.headers.get('location')]).toEqual(['true', 'gzip', '/r/1'])
    expect(new Uint8Array(await again.arrayBuffer())).toEqual(first)
  })

  it('replayHeaders lists exactly what is stored, caller headers included if named', async () => {
    const { app, bare, post } = api({ replayCache: false, replayHeaders: ['location', 'vary'] })
    const key = newKey()
    await post(app, key, { origin: 'https://a.example' })
    const stored = await post(bare, key)
    expect(stored.headers.get('location')).toBe('/orders/1')
    expect(stored.headers.get('x-handler')).toBeNull()
  })
})
