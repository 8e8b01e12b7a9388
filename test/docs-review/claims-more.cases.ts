/**
 * Review s31 (docs): more claims of docs/client.md, docs/dispatch.md, docs/origin.md, docs/durable-state.md and
 * docs/errors.md, each checked against the code.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { createOnceFetch, onceFetch, onceInfo, OnceFetchError } from '../../src/client/index.js'
import { memoryStore, onceReceiver } from '../../src/origin/index.js'
import { once, onceObject, PROBLEM_BASE, proxy } from '../../src/index.js'
import { newKey, until } from '../helpers.js'

const post = (app: Hono, path: string, key: string, body = '{"amount":100}', headers: Record<string, string> = {}) =>
  app.request(path, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json', ...headers }, body }, env)

const fetcherOf = (app: Hono) => ({ fetch: (r: Request) => app.fetch(r) }) as unknown as Fetcher

describe('option messages the docs quote', () => {
  it('client.md: bad client options throw the quoted TypeError', () => {
    expect(() => createOnceFetch({ retries: 11 })).toThrow(new TypeError('hono-once: invalid hono-once/client options: retries: expected an integer >= 0 and <= 10'))
  })

  it('client.md: given to onceFetch(input, init, options), bad options reject its promise instead of throwing', async () => {
    let p: Promise<Response> | undefined
    expect(() => (p = onceFetch('http://x/', { method: 'POST' }, { retries: -1 }))).not.toThrow()
    await expect(p).rejects.toThrow(TypeError)
  })

  it('dispatch.md: proxy() option message', () => {
    expect(() => proxy({ origins: [{ name: 'eu', url: 'https://eu.example' }, { name: 'us', url: 'https://us.example/?a=1' }] })).toThrow(
      'hono-once: invalid proxy() options: origins.1.url: expected an absolute http(s) URL without query or fragment',
    )
  })

  it('origin.md: onceReceiver() option message shape', () => {
    expect(() => onceReceiver({ store: memoryStore(), waitMs: -5 })).toThrow(/^hono-once: invalid onceReceiver\(\) options: waitMs: /)
  })

  it('durable-state.md: the StableArea options are refused by onceObject() with a message naming them', () => {
    for (const name of ['namespace', 'shards', 'locationHint', 'leaseMs', 'domain', 'onDuplicate']) {
      const value = name === 'shards' ? 2 : name === 'leaseMs' ? 5000 : name === 'locationHint' ? 'weur' : () => ''
      expect(() => onceObject(() => ({}) as never, { [name]: value } as never)).toThrow(new RegExp(name))
    }
  })
})

describe('client.md claims', () => {
  it('a problem with retryable: false is final whatever its status (the 500 reply-lost from proxy(), as client.md now names it): one attempt, returned as it is', async () => {
    const origin = new Hono().post('/big', (c) => c.text('y'.repeat(4096), 201))
    const app = new Hono()
    app.post('/big', once(), proxy({ origins: [{ name: 'eu', fetcher: fetcherOf(origin) }], maxResponseBytes: 1024 }))
    const f = createOnceFetch({ fetch: (r) => app.request(r, undefined, env), budget: false, baseDelayMs: 1, maxDelayMs: 2 })
    const res = await f('http://x/big', { method: 'POST', body: '{}' })
    expect(res.status).toBe(500)
    expect(onceInfo(res)).toMatchObject({ attempts: 1 })
  })

  it('OnceFetchError names the call by method, origin and path, never its query', async () => {
    const f = createOnceFetch({ fetch: () => Promise.reject(new TypeError('network down')), budget: false, retries: 4, baseDelayMs: 1, maxDelayMs: 2 })
    const err = await f('https://api.example/reports?token=s3cret#frag', { method: 'POST', body: '{}' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(OnceFetchError)
    expect((err as Error).message).toContain('POST https://api.example/reports failed (5 attempts)')
    expect((err as Error).message).not.toContain('s3cret')
  })

  it('a key set in the headers wins, bare or quoted; it goes out as an sf-string, onceInfo tells it bare', async () => {
    const seen: string[] = []
    const f = createOnceFetch({ fetch: (r) => (seen.push(r.headers.get('idempotency-key') ?? ''), new Response('ok', { status: 201 })), budget: false })
    const a = await f('http://x/', { method: 'POST', headers: { 'idempotency-key': 'abc' } })
    const b = await f('http://x/', { method: 'PATCH', headers: { 'idempotency-key': '"abc"' } })
    expect(seen).toEqual(['"abc"', '"abc"'])
    expect(onceInfo(a)?.key).toBe('abc')
    expect(onceInfo(b)?.key).toBe('abc')
  })
})

describe('once.md: other claims', () => {
  it('registering once() twice: the second steps aside, the handler runs once and the replay is the first', async () => {
    let runs = 0
    const app = new Hono()
    app.use('/x/*', once())
    app.post('/x/y', once(), (c) => (runs++, c.text('ok', 201)))
    const key = newKey()
    expect((await post(app, '/x/y', key)).status).toBe(201)
    const again = await post(app, '/x/y', key)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(runs).toBe(1)
  })

  it('a provisional commit(): a duplicate waits for the final reply, then gets it (even a 5xx)', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let runs = 0
    const app = new Hono().post('/o', once(), async (c) => {
      runs++
      await c.var.once.commit()
      await gate
      return c.text('downstream broke', 503)
    })
    const key = newKey()
    const first = post(app, '/o', key)
    await until(key, (r) => r?.provisional === true)
    const dup = post(app, '/o', key)
    setTimeout(release, 300)
    const [a, b] = await Promise.all([first, dup])
    expect(a.status).toBe(503)
    expect(b.status).toBe(503)
    expect(await b.text()).toBe('downstream broke')
    expect(runs).toBe(1)
  })

  it('maxBodyBytes: a larger body is 413 body-too-large, nothing runs', async () => {
    let runs = 0
    const app = new Hono().post('/b', once({ maxBodyBytes: 100 }), (c) => (runs++, c.text('ok', 201)))
    const res = await post(app, '/b', newKey(), 'x'.repeat(500))
    expect(res.status).toBe(413)
    expect(await res.json()).toMatchObject({ type: `${PROBLEM_BASE}body-too-large`, retryable: false })
    expect(runs).toBe(0)
  })

  it('errors.md: a state-changing hedge without once() is a 500 misconfigured', async () => {
    const origin = new Hono().post('/h', (c) => c.text('ok', 201))
    const app = new Hono().post('/h', proxy({ origins: [{ name: 'eu', fetcher: fetcherOf(origin) }], strategy: 'hedge' }))
    const res = await app.request('/h', { method: 'POST', body: '{}' }, env)
    expect(res.status).toBe(500)
    expect(await res.json()).toMatchObject({ type: `${PROBLEM_BASE}misconfigured` })
  })
})

describe('limits.md: a reply over maxReplyBytes', () => {
  it('still reaches the first client whole; duplicates get a reply-lost naming the original status; the handler never runs again', async () => {
    let runs = 0
    const app = new Hono().post('/r', once({ maxReplyBytes: 1000, replayCache: false }), (c) => (runs++, c.text('z'.repeat(5000), 201)))
    const key = newKey()
    const a = await post(app, '/r', key)
    expect(a.status).toBe(201)
    expect((await a.text()).length).toBe(5000)
    const b = await post(app, '/r', key)
    expect(b.status).toBe(500)
    const body = (await b.json()) as { type: string; detail: string }
    expect(body.type).toBe(`${PROBLEM_BASE}reply-lost`)
    expect(body.detail).toMatch(/201/)
    expect(runs).toBe(1)
  })
})

describe('once.md: "What is final: one rule, thrown or returned"', () => {
  it('a thrown Error (500) releases the key; a thrown non-Error releases it and propagates; the retry runs again', async () => {
    let runs = 0
    const app = new Hono().post('/e', once(), (c) => {
      runs++
      if (runs === 1) throw new Error('boom')
      if (runs === 2) throw 'x'
      return c.text('ok', 201)
    })
    const key = newKey()
    expect((await post(app, '/e', key)).status).toBe(500)
    await expect(Promise.resolve().then(() => post(app, '/e', key))).rejects.toBe('x')
    const third = await post(app, '/e', key)
    expect(third.status).toBe(201)
    expect(runs).toBe(3)
  })
})

describe('client.md: retries and errors', () => {
  const inflight = () =>
    new Response(JSON.stringify({ type: `${PROBLEM_BASE}in-flight`, status: 409, retryable: true }), {
      status: 409,
      headers: { 'content-type': 'application/problem+json', 'retry-after': '30' },
    })

  it('a Retry-After longer than maxDelayMs ends the retries: you get the 409', async () => {
    let sends = 0
    const f = createOnceFetch({ fetch: () => (sends++, inflight()), budget: false, maxDelayMs: 1000 })
    const res = await f('http://x/', { method: 'POST', body: '{}' })
    expect(res.status).toBe(409)
    expect(sends).toBe(1)
  })

  it('onRetry that throws is logged and the retry goes on', async () => {
    let sends = 0
    const f = createOnceFetch({
      fetch: () => (sends++ === 0 ? new Response('down', { status: 503 }) : new Response('ok', { status: 201 })),
      budget: false,
      baseDelayMs: 1,
      maxDelayMs: 2,
      onRetry: () => {
        throw new Error('my hook')
      },
    })
    const res = await f('http://x/', { method: 'POST', body: '{}' })
    expect(res.status).toBe(201)
    expect(sends).toBe(2)
  })

  it("aborted: the call stops at once mid-backoff, reason 'aborted', cause the signal's reason", async () => {
    const ctl = new AbortController()
    const f = createOnceFetch({ fetch: () => new Response('down', { status: 503, headers: { 'retry-after': '5' } }), budget: false })
    const p = f('http://x/', { method: 'POST', body: '{}', signal: ctl.signal }).catch((e: unknown) => e)
    setTimeout(() => ctl.abort(new Error('user left')), 50)
    const started = Date.now()
    const err = (await p) as OnceFetchError
    expect(Date.now() - started).toBeLessThan(1000)
    expect(err).toBeInstanceOf(OnceFetchError)
    expect(err.reason).toBe('aborted')
    expect((err.cause as Error).message).toBe('user left')
    expect(err.key).toBeTruthy()
  })
})

describe('gateway.md: its JSON example', () => {
  it('is a valid ONCE_CONFIG', async () => {
    const { parseGatewayConfig } = await import('../../src/gateway/config.js')
    const example = {
      origins: [{ name: 'eu', url: 'https://eu.origin.example.com' }],
      routes: [{ path: '/accounts/*' }],
      cors: { origins: ['https://shop.example', 'http://localhost:5173'], credentials: false, maxAgeSeconds: 600 },
    }
    expect(() => parseGatewayConfig(example)).not.toThrow()
  })
})
