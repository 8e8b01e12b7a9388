/**
 * Review s31 (docs): the claims of docs/once.md and docs/errors.md a user builds on, each checked against the code.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { cors } from 'hono/cors'
import { HTTPException } from 'hono/http-exception'
import { requestId } from 'hono/request-id'
import { describe, expect, it } from 'vitest'
import { once, PROBLEM_BASE } from '../../src/index.js'
import { newKey, until } from '../helpers.js'

const post = (app: Hono, path: string, key: string, body = '{"amount":100}', headers: Record<string, string> = {}) =>
  app.request(path, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json', ...headers }, body }, env)

describe('docs/errors.md + docs/once.md claims', () => {
  it('errors.md: 409 in-flight carries Retry-After: 1 (inFlight: reject)', async () => {
    let finish!: () => void
    const gate = new Promise<void>((r) => (finish = r))
    const app = new Hono().post('/pay', once({ inFlight: 'reject' }), async (c) => {
      await gate
      return c.text('paid', 201)
    })
    const key = newKey()
    const first = post(app, '/pay', key)
    await until(key, (r) => r?.state === 'in_flight')
    const dup = await post(app, '/pay', key)
    finish()
    await first
    expect(dup.status).toBe(409)
    expect(dup.headers.get('retry-after')).toBe('1')
    const body = (await dup.json()) as Record<string, unknown>
    expect(body).toMatchObject({ type: `${PROBLEM_BASE}in-flight`, status: 409, retryable: true, idempotency_key: key, instance: '/pay' })
  })

  it('once.md: a returned 429 (and 408) releases the key: the retry runs the handler again', async () => {
    let runs = 0
    const app = new Hono().post('/pay', once(), (c) => {
      runs++
      return runs === 1 ? c.text('slow down', 429) : runs === 2 ? c.text('timeout', 408) : c.text('ok', 201)
    })
    const key = newKey()
    expect((await post(app, '/pay', key)).status).toBe(429)
    expect((await post(app, '/pay', key)).status).toBe(408)
    const third = await post(app, '/pay', key)
    expect(third.status).toBe(201)
    expect(runs).toBe(3)
  })

  it('once.md: throw new HTTPException(404) is committed like a returned 404; a retry replays it', async () => {
    let runs = 0
    const app = new Hono().post('/pay', once(), () => {
      runs++
      throw new HTTPException(404, { message: 'no such account' })
    })
    const key = newKey()
    const a = await post(app, '/pay', key)
    const b = await post(app, '/pay', key)
    expect([a.status, b.status]).toEqual([404, 404])
    expect(b.headers.get('idempotent-replayed')).toBe('true')
    expect(await b.text()).toBe(await a.text())
    expect(runs).toBe(1)
  })

  it('once.md: a replay carries Idempotent-Replayed: true, the stored headers, and no Set-Cookie by default', async () => {
    const app = new Hono().post('/pay', once(), (c) => c.json({ ok: true }, 201, { 'x-ledger': 'main', 'set-cookie': 'session=abc', location: '/pay/1' }))
    const key = newKey()
    const a = await post(app, '/pay', key)
    const b = await post(app, '/pay', key)
    expect(a.headers.get('idempotent-replayed')).toBeNull()
    expect(b.headers.get('idempotent-replayed')).toBe('true')
    expect(b.headers.get('x-ledger')).toBe('main')
    expect(b.headers.get('location')).toBe('/pay/1')
    expect(b.headers.get('set-cookie')).toBeNull()
  })

  it("once.md: a scope function that returns '' gets 400 scope-missing, and nothing runs", async () => {
    let runs = 0
    const app = new Hono().post('/pay', once({ scope: () => '' }), (c) => {
      runs++
      return c.text('ok', 201)
    })
    const res = await post(app, '/pay', newKey())
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ type: `${PROBLEM_BASE}scope-missing`, retryable: false })
    expect(runs).toBe(0)
    // …and `unscoped: 'shared'` accepts it.
    const shared = new Hono().post('/pay', once({ scope: () => '', unscoped: 'shared' }), (c) => c.text('ok', 201))
    expect((await post(shared, '/pay', newKey())).status).toBe(201)
  })

  it('once.md: the example message of a bad option is what once() throws', () => {
    expect(() => once({ replayCache: { maxEntries: 0 } })).toThrow(
      new TypeError('hono-once: invalid once() options: replayCache.maxEntries: expected a number >= 1'),
    )
  })

  it('once.md: commit() args over 1 MiB: commit resolves, this caller gets its answer, duplicates get reply-lost (500, retryable false)', async () => {
    let runs = 0
    let resolved = false
    const app = new Hono().post(
      '/inv',
      once({ onDuplicate: (_args, c) => c.text('rebuilt', 201) }),
      async (c) => {
        runs++
        const res = c.text('created', 201)
        await c.var.once.commit(res, { args: { blob: 'x'.repeat(1024 * 1024 + 10) } })
        resolved = true
        return res
      },
    )
    const key = newKey()
    const a = await post(app, '/inv', key)
    expect(a.status).toBe(201)
    expect(await a.text()).toBe('created')
    expect(resolved).toBe(true)
    const b = await post(app, '/inv', key)
    expect(b.status).toBe(500)
    expect(await b.json()).toMatchObject({ type: `${PROBLEM_BASE}reply-lost`, retryable: false })
    expect(runs).toBe(1)
  })

  it('errors.md: 422 key-reused also for a key released after a failed attempt', async () => {
    let runs = 0
    const app = new Hono().post('/pay', once(), (c) => {
      runs++
      return c.text('down', 503)
    })
    const key = newKey()
    expect((await post(app, '/pay', key, '{"amount":100}')).status).toBe(503)
    const other = await post(app, '/pay', key, '{"amount":999}')
    expect(other.status).toBe(422)
    expect(await other.json()).toMatchObject({ type: `${PROBLEM_BASE}key-reused` })
    expect(runs).toBe(1)
  })

  it("once.md: the cors + requestId example: a retry from b.example gets its own ACAO and X-Request-Id, and the stored Location", async () => {
    const app = new Hono()
    app.use('/api/*', cors({ origin: ['https://a.example', 'https://b.example'], credentials: true }))
    app.use('/api/*', requestId())
    app.post('/api/orders', once({ scope: (c) => c.req.header('x-user-id') ?? '' }), (c) => c.json({ id: 1 }, 201, { location: '/api/orders/1' }))
    const key = newKey()
    const a = await post(app, '/api/orders', key, '{}', { origin: 'https://a.example', 'x-user-id': 'u1', 'x-request-id': 'req-a' })
    const b = await post(app, '/api/orders', key, '{}', { origin: 'https://b.example', 'x-user-id': 'u1', 'x-request-id': 'req-b' })
    expect(a.status).toBe(201)
    expect(b.status).toBe(201)
    expect(b.headers.get('idempotent-replayed')).toBe('true')
    expect(b.headers.get('access-control-allow-origin')).toBe('https://b.example')
    expect(b.headers.get('x-request-id')).toBe('req-b')
    expect(b.headers.get('location')).toBe('/api/orders/1')
  })

  it("errors.md: the text of an error a scope function threw never goes into a detail (500 misconfigured)", async () => {
    const app = new Hono().post(
      '/pay',
      once({
        scope: () => {
          throw new Error('postgres://admin:hunter2@db')
        },
      }),
      (c) => c.text('ok', 201),
    )
    const res = await post(app, '/pay', newKey())
    expect(res.status).toBe(500)
    const text = await res.text()
    expect(text).not.toContain('hunter2')
    expect(JSON.parse(text)).toMatchObject({ type: `${PROBLEM_BASE}misconfigured` })
  })

  it('once.md/errors.md: past maxRunMs: 504 handler-timeout, retryable, Retry-After: 1', async () => {
    const app = new Hono().post('/pay', once({ leaseMs: 1000, maxRunMs: 1200 }), async () => new Promise<Response>(() => {}))
    const res = await post(app, '/pay', newKey())
    expect(res.status).toBe(504)
    expect(res.headers.get('retry-after')).toBe('1')
    expect(await res.json()).toMatchObject({ type: `${PROBLEM_BASE}handler-timeout`, retryable: true })
  })
})
