/**
 * Review s31 (docs): claims of docs/once.md, docs/dispatch.md, docs/origin.md and docs/errors.md about what
 * goes over the wire and what a retry gets.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, PROBLEM_BASE, proxy } from '../../src/index.js'
import { expireKey } from '../../src/testing.js'
import { newKey } from '../helpers.js'

const fetcherOf = (app: Hono) => ({ fetch: (r: Request) => app.fetch(r) }) as unknown as Fetcher

/** An origin that records the headers it got and answers 201. */
function recorder() {
  const seen: Headers[] = []
  const app = new Hono().all('*', (c) => {
    seen.push(new Headers(c.req.raw.headers))
    return c.json({ ok: true }, 201)
  })
  return { seen, origin: { name: 'eu', fetcher: fetcherOf(app) } }
}

describe('once.md: the request id and attempt', () => {
  it('after a failure released the key, the retry has the same requestId and attempt 2', async () => {
    const seen: { id: string; attempt: number }[] = []
    const app = new Hono().post('/p', once(), (c) => {
      seen.push({ id: c.var.once.requestId, attempt: c.var.once.attempt })
      return seen.length === 1 ? c.text('down', 503) : c.text('ok', 201)
    })
    const key = newKey()
    const req = () => app.request('/p', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{}' }, env)
    expect((await req()).status).toBe(503)
    expect((await req()).status).toBe(201)
    expect(seen[1]!.id).toBe(seen[0]!.id)
    expect(seen.map((s) => s.attempt)).toEqual([1, 2])
  })

  it('ttlSeconds: past it the key is new again (the handler runs again)', async () => {
    let runs = 0
    const app = new Hono().post('/t', once({ replayCache: false }), (c) => (runs++, c.text('ok', 201)))
    const key = newKey()
    const req = () => app.request('/t', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{}' }, env)
    await req()
    await expireKey(env.ONCE, key)
    const again = await req()
    expect(again.headers.get('idempotent-replayed')).toBeNull()
    expect(runs).toBe(2)
  })

  it('methods: a GET listed brings HEAD with it (a HEAD without a key is 400)', async () => {
    const app = new Hono().get('/g', once({ methods: ['GET'] }), (c) => c.text('ok'))
    const head = await app.request('/g', { method: 'HEAD' }, env)
    expect(head.status).toBe(400)
  })
})

describe('dispatch.md / origin.md: what a forwarded request carries', () => {
  it('carries Idempotency-Key, Once-Request-Id = c.var.once.requestId, Once-Attempt, Content-Digest; drops the client Authorization, Cookie and Once-* on a write', async () => {
    const { seen, origin } = recorder()
    let requestId = ''
    const app = new Hono()
    app.use('/w', once({ scope: () => 'tenant-1' }))
    app.use('/w', async (c, next) => {
      requestId = c.var.once.requestId
      await next()
    })
    app.post('/w', proxy({ origins: [origin] }))
    const key = newKey()
    const res = await app.request(
      '/w',
      { method: 'POST', headers: { 'idempotency-key': `"${key}"`, authorization: 'Bearer t', cookie: 'a=b', 'once-domain': 'x', 'content-type': 'application/json' }, body: '{}' },
      env,
    )
    expect(res.status).toBe(201)
    expect(res.headers.get('once-origin')).toBe('eu')
    expect(res.headers.get('once-applied')).toBeNull()
    const h = seen[0]!
    expect(h.get('idempotency-key')).toBe(`"${key}"`)
    expect(h.get('once-request-id')).toBe(requestId)
    expect(h.get('once-attempt')).toBe('1')
    expect(h.get('content-digest')).toMatch(/^sha-256=:/)
    expect(h.get('once-principal')).toBe('scope="tenant-1"')
    expect(h.get('authorization')).toBeNull()
    expect(h.get('cookie')).toBeNull()
    expect(h.get('once-domain')).toBeNull()
  })

  it('origin.md: Once-Principal is absent when unscoped', async () => {
    const { seen, origin } = recorder()
    const app = new Hono()
    app.post('/u', once({ unscoped: 'shared' }), proxy({ origins: [origin] }))
    await app.request('/u', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"` }, body: '{}' }, env)
    expect(seen[0]!.has('once-principal')).toBe(false)
  })

  it('errors.md: 431 headers-too-large for a relayed request over 8 KiB of path and headers; nothing sent', async () => {
    // A url origin (a relayed route: fetcher-only routes store no relay); nothing listens there, and nothing is sent.
    const seen: unknown[] = []
    const app = new Hono()
    app.post('/big', once(), proxy({ origins: [{ name: 'eu', url: 'http://127.0.0.1:9' }] }))
    const res = await app.request('/big', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'x-big': 'a'.repeat(9000) }, body: '{}' }, env)
    expect(res.status).toBe(431)
    expect(await res.json()).toMatchObject({ type: `${PROBLEM_BASE}headers-too-large`, retryable: false })
    expect(seen.length).toBe(0)
  })

  it('errors.md: 400 header-unsignable for a signed write with a non-ASCII header; nothing sent', async () => {
    const { seen, origin } = recorder()
    const app = new Hono()
    app.post('/s', once(), proxy({ origins: [origin], secret: { env: 'TEST_SIGNING_SECRET' } }))
    const res = await app.request('/s', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'x-note': 'Ren\u00e9' }, body: '{}' }, env)
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ type: `${PROBLEM_BASE}header-unsignable` })
    expect(seen.length).toBe(0)
  })
})
