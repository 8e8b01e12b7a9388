/**
 * How failover and hedge read an origin's health (review s28): a healthy
 * origin answers whenever one is there, whatever the others do (dead,
 * flapping, hanging); a refusal about the request itself (the app throws on
 * it) ends the request, non-retryable, and costs no origin its health; a
 * drained origin is asked only when no other can be.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { originGroup, proxyWith } from '../../src/origin-adapter/dispatch.js'
import { startOrigins } from '../farm.js'
import { newKey, problemOf } from '../helpers.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const ok = (from: string, status = 200) => new Response(JSON.stringify({ from }), { status, headers: { 'content-type': 'application/json', 'once-applied': '?1' } })
const down = (name: string, sends: { n: number } = { n: 0 }) => ({ name, fetcher: { fetch: async () => (sends.n++, Promise.reject(new Error('connection refused'))) } })
const up = (name: string) => ({ name, fetcher: { fetch: async () => ok(name) } })

describe('a healthy origin answers whenever one is there', () => {
  it.each(['hedge', 'failover'] as const)('%s: a dead preferred origin probed at every cooldown (low traffic) never costs a request its failover', async (strategy) => {
    const sends = { n: 0 }
    const app = new Hono()
    app.get('/*', proxy({ origins: [down('eu', sends), up('us')], strategy, hedgeAfterMs: 1000, breaker: { failures: 2, cooldownMs: 100 } }))
    const statuses: number[] = []
    for (let i = 0; i < 12; i++) {
      statuses.push((await app.request('/accounts/a', {}, env)).status)
      // One request per cooldown: each one probes eu first.
      await sleep(120)
    }
    expect(sends.n).toBeGreaterThan(4)
    expect(statuses).toEqual(Array(12).fill(200))
  })

  it.each(['hedge', 'failover'] as const)('%s: a flapping preferred origin (every other send reset) at full speed: the healthy one answers each failure', async (strategy) => {
    let n = 0
    const eu = { name: 'eu', fetcher: { fetch: async () => (n++ % 2 === 0 ? Promise.reject(new Error('connection reset')) : ok('eu')) } }
    const app = new Hono()
    app.get('/*', proxy({ origins: [eu, up('us')], strategy, hedgeAfterMs: 1000 }))
    const statuses: number[] = []
    for (let i = 0; i < 40; i++) statuses.push((await app.request('/accounts/a', {}, env)).status)
    expect(statuses.filter((s) => s !== 200)).toEqual([])
  })

  it('retries still stop when every origin fails: an outage is not multiplied', async () => {
    const eu = { n: 0 }
    const us = { n: 0 }
    const app = new Hono()
    app.get('/*', proxy({ origins: [down('eu', eu), down('us', us)], strategy: 'failover', maxAttempts: 3, breaker: { failures: 1000 } }))
    for (let i = 0; i < 30; i++) expect((await app.request('/accounts/a', {}, env)).status).toBe(502)
    // Unthrottled, 30 requests × 3 attempts = 90 sends; each origin's budget stops the retries after a few.
    expect(eu.n + us.n).toBeLessThan(50)
  })

  it('hedge: a preferred origin that never answers opens its breaker after `failures` lost races, and stops being asked first', async () => {
    let euSends = 0
    const eu = {
      name: 'eu',
      fetcher: { fetch: (req: Request) => (euSends++, new Promise<Response>((_, reject) => req.signal.addEventListener('abort', () => reject(req.signal.reason)))) },
    }
    const group = originGroup({ origins: [eu, up('us')], strategy: 'hedge', hedgeAfterMs: 20, breaker: { failures: 3, cooldownMs: 60_000 } }, 'proxy()')
    const app = new Hono()
    app.get('/*', proxyWith(group))
    for (let i = 0; i < 20; i++) expect((await app.request('/accounts/a', {}, env)).status).toBe(200)
    expect(group.health.report(['eu'])[0]!.breaker).toBe('open')
    expect(euSends).toBe(3)
  })

  it('hedge: a slower origin that answers, though it loses some races, keeps its breaker closed', async () => {
    let n = 0
    // Every third answer is late (past the hedge delay); the others are in time.
    const eu = { name: 'eu', fetcher: { fetch: async () => (++n % 3 === 0 ? (await sleep(60), ok('eu')) : ok('eu')) } }
    const group = originGroup({ origins: [eu, up('us')], strategy: 'hedge', hedgeAfterMs: 20, breaker: { failures: 3, cooldownMs: 60_000 } }, 'proxy()')
    const app = new Hono()
    app.get('/*', proxyWith(group))
    for (let i = 0; i < 30; i++) expect((await app.request('/accounts/a', {}, env)).status).toBe(200)
    expect(group.health.report(['eu'])[0]!.breaker).toBe('closed')
  })
})

describe('a refusal about the request itself', () => {
  const refusal = (type: string, status: number) =>
    new Response(JSON.stringify({ type: `https://hono-once.dev/problems/${type}`, title: 'refused', status, retryable: false }), {
      status,
      headers: { 'content-type': 'application/problem+json', 'once-applied': '?0' },
    })
  const origin = (name: string, sends: string[], state: { down: boolean } = { down: false }) => ({
    name,
    fetcher: {
      fetch: async (req: Request) => {
        if (state.down) throw new Error('connection reset')
        sends.push(name)
        const body = await req.text()
        if (body.includes('"poison"')) return refusal('handler-failed', 500)
        if (body.includes('"huge"')) return refusal('body-too-large', 413)
        return ok(name, 201)
      },
    },
  })

  it.each(['failover', 'hedge'] as const)('%s: handler-failed and body-too-large are asked of each origin once (a throw may pass, a limit differ), then passed on as the origin gave them (retryable: false)', async (strategy) => {
    const sends: string[] = []
    const app = new Hono()
    app.use('/*', once({ replayCache: false }))
    app.post('/*', proxy({ origins: [origin('eu', sends), origin('us', sends)], strategy, hedgeAfterMs: 1000 }))
    const post = (body: string) => app.request('/orders', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body }, env)
    const poisoned = await post('{"poison":true}')
    expect(poisoned.status).toBe(500)
    expect(await problemOf(poisoned)).toMatchObject({ type: 'https://hono-once.dev/problems/handler-failed', retryable: false })
    expect(poisoned.headers.get('once-origin')).toBe('us')
    expect(poisoned.headers.get('once-applied')).toBeNull()
    const huge = await post('{"huge":true}')
    expect(huge.status).toBe(413)
    expect(sends).toEqual(['eu', 'us', 'eu', 'us'])
  })

  it("one client's poison requests cost the origins neither their breakers nor the others' failover", async () => {
    const sends: string[] = []
    const eu = { down: false }
    const app = new Hono()
    app.use('/*', once({ replayCache: false }))
    app.post('/*', proxy({ origins: [origin('eu', sends, eu), origin('us', sends)], strategy: 'failover', breaker: { failures: 3 } }))
    const post = (body: string) => app.request('/orders', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body }, env)
    for (let i = 0; i < 10; i++) expect((await post('{"poison":true}')).status).toBe(500)
    eu.down = true
    const res = await post('{"amount":1}')
    expect(res.status).toBe(201)
    expect(res.headers.get('once-origin')).toBe('us')
  })
})

describe('a drained origin (drain: true)', () => {
  it.each(['hedge', 'failover'] as const)('%s: gets no requests while another origin can take them; alone, it still answers', async (strategy) => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    const app = new Hono()
    app.get('/*', proxy({ origins: [{ name: 'eu', url: eu!.url, drain: true }, { name: 'us', url: us!.url }], strategy, hedgeAfterMs: 1000 }))
    for (let i = 0; i < 5; i++) expect((await app.request('/accounts/a', {}, env)).headers.get('once-origin')).toBe('us')
    const alone = new Hono()
    alone.get('/*', proxy({ origins: [{ name: 'eu', url: eu!.url, drain: true }], strategy }))
    expect((await alone.request('/accounts/a', {}, env)).headers.get('once-origin')).toBe('eu')
  })
})

describe('Retry-After, honoured', () => {
  const answering = (name: string, answers: Response[], sends: { n: number }) => ({
    name,
    fetcher: { fetch: async () => (sends.n++, answers.shift()?.clone() ?? ok(name, 201)) },
  })
  const slowDown = (status: 429 | 503, seconds: number) => new Response('slow down', { status, headers: { 'retry-after': String(seconds) } })
  const writes = (origins: ReturnType<typeof answering>[], strategy: 'failover' | 'hedge') => {
    const app = new Hono()
    app.use('/*', once({ replayCache: false }))
    app.post('/*', proxy({ origins, strategy, maxAttempts: 3, hedgeAfterMs: 50, deadlineMs: 4000 }))
    return () => app.request('/pay', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{}' }, env)
  }

  it.each(['failover', 'hedge'] as const)('%s: an origin that asked to wait past the deadline is not sent the request again, and the client is told when to come back', async (strategy) => {
    const sends = { n: 0 }
    const post = writes([answering('eu', [slowDown(429, 30), slowDown(429, 30)], sends)], strategy)
    const res = await post()
    expect(res.status).toBe(502)
    expect(sends.n).toBe(1)
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(29)
  })

  it('failover: a wait within the deadline is waited out, then the request is sent again', async () => {
    const sends = { n: 0 }
    const started = Date.now()
    const res = await writes([answering('eu', [slowDown(503, 1)], sends)], 'failover')()
    expect(res.status).toBe(201)
    expect(sends.n).toBe(2)
    expect(Date.now() - started).toBeGreaterThanOrEqual(900)
  })

  it("a 429's wait is this request's (often one caller over its rate); a 503's keeps every request off the origin", async () => {
    const eu = { n: 0 }
    const us = { n: 0 }
    const post = writes([answering('eu', [slowDown(429, 3600)], eu), answering('us', [], us)], 'failover')
    expect((await post()).headers.get('once-origin')).toBe('us')
    // The next request (another caller) goes to eu again.
    expect((await post()).headers.get('once-origin')).toBe('eu')
    const eu2 = { n: 0 }
    const us2 = { n: 0 }
    const post2 = writes([answering('eu', [slowDown(503, 3600)], eu2), answering('us', [], us2)], 'failover')
    expect((await post2()).headers.get('once-origin')).toBe('us')
    expect((await post2()).headers.get('once-origin')).toBe('us')
    expect(eu2.n).toBe(1)
  })
})

describe("a request's hedges and the invocation's connections", () => {
  it('never holds more than 6 attempts open at once (a Worker invocation has 6 connections); the queued ones start their timeout when sent', async () => {
    let open = 0
    let most = 0
    const hanging = (name: string) => ({
      name,
      fetcher: {
        fetch: (req: Request) => {
          most = Math.max(most, ++open)
          return new Promise<Response>((_, reject) => req.signal.addEventListener('abort', () => (open--, reject(req.signal.reason))))
        },
      },
    })
    const app = new Hono()
    app.get('/*', proxy({ origins: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map(hanging), strategy: 'hedge', hedgeAfterMs: 1, maxAttempts: 8, timeoutMs: 200, deadlineMs: 2000 }))
    const res = await app.request('/accounts/a', {}, env)
    expect(res.status).toBe(504)
    expect(most).toBe(6)
  })
})
