import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, PROBLEM_BASE, proxy, type OnceOptions, type ProxyOptions } from '../../src/index.js'
import { badOrigin, eventually, type FarmOrigin, startOrigins } from '../farm.js'
import { newKey, problemOf } from '../helpers.js'

/** An edge in front of `origins`: once() on /accounts/*, failover writes, hedged reads. */
function edge(origins: { name: string; url: string }[], write: Partial<ProxyOptions> = {}, read: Partial<ProxyOptions> = {}, onceOptions: OnceOptions = {}) {
  const app = new Hono()
  app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false, ...onceOptions }))
  app.post('/accounts/*', proxy({ origins, strategy: 'failover', timeoutMs: 1500, deadlineMs: 6000, ...write }))
  app.get('/accounts/*', proxy({ origins, strategy: 'hedge', hedgeAfterMs: 100, ...read }))
  const deposit = (account: string, key: string, amount = 100) =>
    app.request(`/accounts/${account}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: JSON.stringify({ amount }) }, env)
  const balance = (account: string) => app.request(`/accounts/${account}`, {}, env)
  return { app, deposit, balance }
}

const list = (origins: FarmOrigin[]) => origins.map(({ name, url }) => ({ name, url }))
const timing = (res: Response) => (res.headers.get('server-timing') ?? '').split(', ').filter(Boolean)
const effectsOf = async (origin: FarmOrigin) => Object.values((await origin.stats()).byRequestId).reduce((n, e) => n + e.applied, 0)

describe('proxy(): failover', () => {
  it('forwards a write once, with the request id, key and attempt on the wire; replays it without a second send', async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    const { deposit } = edge(list([eu!, us!]))
    const key = newKey()
    const res = await deposit('alice', key)
    expect(res.status).toBe(201)
    expect(res.headers.get('once-origin')).toBe('eu')
    expect(timing(res)).toEqual([expect.stringMatching(/^eu;desc="#1 201";dur=\d+/)])
    const body = await res.text()
    expect(JSON.parse(body)).toEqual({ id: 'alice', balance: 100 })
    const again = await deposit('alice', key)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(again.headers.get('once-origin')).toBe('eu')
    // The stored reply is the origin's bytes (taken from proxy()'s buffer, not read again), byte for byte.
    expect(await again.text()).toBe(body)
    const stats = await eu!.stats()
    expect(stats.requests).toBe(1)
    expect(Object.values(stats.byRequestId)).toEqual([expect.objectContaining({ received: 1, applied: 1 })])
    expect(await effectsOf(us!)).toBe(0)
  })

  it('fails over to the next origin when the preferred one is dead', async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    await eu!.stop()
    const { deposit } = edge(list([eu!, us!]))
    const res = await deposit('bob', newKey())
    expect(res.status).toBe(201)
    expect(res.headers.get('once-origin')).toBe('us')
    expect(timing(res)).toEqual([expect.stringMatching(/^eu;desc="#1 network"/), expect.stringMatching(/^us;desc="#2 201"/)])
    expect(await effectsOf(us!)).toBe(1)
  })

  it('503 twice, then OK: three attempts with one request id and Once-Attempt 1, 2, 3; applied once', async () => {
    const [eu] = await startOrigins(['eu'])
    await eu!.faults({ failNext: 2 })
    const { deposit } = edge(list([eu!]))
    const res = await deposit('carol', newKey())
    expect(res.status).toBe(201)
    expect(timing(res).map((t) => /desc="([^"]+)"/.exec(t)?.[1])).toEqual(['#1 503', '#2 503', '#3 201'])
    const stats = await eu!.stats()
    const [only] = Object.values(stats.byRequestId)
    expect(Object.keys(stats.byRequestId)).toHaveLength(1) // one request id on every attempt
    expect(only).toMatchObject({ received: 3, applied: 1 })
  })

  it('an origin that applied the request but lost its answer: the retry gets the first result, the effect happened once', async () => {
    const [eu] = await startOrigins(['eu'])
    const { deposit } = edge(list([eu!]))
    await deposit('dave', newKey(), 50)
    await eu!.faults({ dropAfterApply: 1 })
    const res = await deposit('dave', newKey(), 100)
    expect(res.status).toBe(201)
    expect(await res.json()).toEqual({ id: 'dave', balance: 150 })
    expect(timing(res)).toHaveLength(2)
    expect((await eu!.stats()).balances).toEqual({ dave: 150 })
  })

  it('every origin down: a retryable 502 (or 504 when they hang), nothing committed; after recovery the retry applies once', async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    await eu!.faults({ down: true })
    await us!.faults({ down: true })
    const { deposit } = edge(list([eu!, us!]), { deadlineMs: 3000, timeoutMs: 500 })
    const key = newKey()
    const down = await deposit('erin', key)
    expect(down.status).toBe(502)
    expect(await problemOf(down)).toMatchObject({ type: `${PROBLEM_BASE}origin-failed`, retryable: true, idempotency_key: key })
    await eu!.faults({ down: false, hang: true })
    await us!.faults({ down: false, hang: true })
    const hung = await deposit('erin', key)
    expect(hung.status).toBe(504)
    expect(await problemOf(hung)).toMatchObject({ type: `${PROBLEM_BASE}origin-timeout`, retryable: true })
    await eu!.faults({ hang: false })
    await us!.faults({ hang: false })
    const retried = await deposit('erin', key)
    expect(retried.status).toBe(201)
    expect(retried.headers.get('idempotent-replayed')).toBeNull()
    expect((await deposit('erin', key)).headers.get('idempotent-replayed')).toBe('true')
    // The hung attempts were applied when released, under the same request id: still one effect per origin at most.
    const effects = (await eu!.stats()).balances.erin ?? 0
    expect(effects + ((await us!.stats()).balances.erin ?? 0)).toBeLessThanOrEqual(200)
    expect(Object.values((await eu!.stats()).byRequestId).every((e) => e.applied <= 1)).toBe(true)
    expect(Object.values((await us!.stats()).byRequestId).every((e) => e.applied <= 1)).toBe(true)
  })

  it('an open breaker skips the origin while another is healthy; after the cooldown a probe closes it', async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    await eu!.faults({ failNext: 1000 })
    const { deposit } = edge(list([eu!, us!]), { breaker: { failures: 2, cooldownMs: 300 } })
    for (let i = 0; i < 2; i++) expect((await deposit('frank', newKey())).headers.get('once-origin')).toBe('us')
    const skipped = await deposit('frank', newKey())
    expect(timing(skipped)).toEqual([expect.stringMatching(/^us;desc="#1 201"/)]) // eu not tried
    await eu!.faults({ failNext: 0 })
    await scheduler.wait(350)
    const probe = await deposit('frank', newKey())
    expect(probe.headers.get('once-origin')).toBe('eu') // the half-open probe succeeded
    expect((await deposit('frank', newKey())).headers.get('once-origin')).toBe('eu') // closed again
  })
})

describe('proxy(): hedging', () => {
  it('a slow preferred origin: the hedge wins from the other, and the loser sees its request aborted', async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    await eu!.faults({ latencyMs: 1000 })
    const { balance } = edge(list([eu!, us!]), {}, { hedgeAfterMs: 50 })
    const started = Date.now()
    const res = await balance('gina')
    expect(res.status).toBe(200)
    expect(res.headers.get('once-origin')).toBe('us')
    expect(Date.now() - started).toBeLessThan(800)
    expect(timing(res)).toEqual([expect.stringMatching(/^eu;desc="#1 aborted"/), expect.stringMatching(/^us;desc="#2 200"/)])
    await eventually(() => eu!.stats(), (s) => s.aborted === 1)
  })

  it('a hedged write behind once(): both copies carry one request id, the origins apply it once each at most', async () => {
    const [eu] = await startOrigins(['eu'])
    const { deposit } = edge(list([eu!, eu!].map((o, i) => ({ ...o, name: `eu${i}` }))), { strategy: 'hedge', hedgeAfterMs: 20, maxAttempts: 2 })
    await eu!.faults({ latencyMs: 200 })
    const res = await deposit('hank', newKey())
    expect(res.status).toBe(201)
    expect(timing(res)).toHaveLength(2)
    const stats = await eventually(() => eu!.stats(), (s) => Object.values(s.byRequestId)[0]?.received === 2)
    expect(Object.keys(stats.byRequestId)).toHaveLength(1)
    expect(Object.values(stats.byRequestId)[0]).toMatchObject({ received: 2, applied: 1 })
    expect(stats.balances).toEqual({ hank: 100 })
  })

  it('refuses to hedge a state-changing request without once()', async () => {
    const [eu] = await startOrigins(['eu'])
    const app = new Hono().post('/x', proxy({ origins: list([eu!]), strategy: 'hedge' }))
    const res = await app.request('/x', { method: 'POST', body: '{}' }, env)
    expect(res.status).toBe(500)
    expect((await problemOf(res)).detail).toMatch(/only behind once\(\)/)
    expect((await eu!.stats()).requests).toBe(0)
  })
})

describe('proxy(): signing', () => {
  it('signs every send when a secret is set; an origin with the secret accepts, one with another secret refuses (nothing applied: 502)', async () => {
    const secret = { env: 'TEST_SIGNING_SECRET' }
    const [eu] = await startOrigins(['eu'], { secrets: { TEST_SIGNING_SECRET: env.TEST_SIGNING_SECRET } })
    const [us] = await startOrigins(['us'], { secrets: { TEST_SIGNING_SECRET: 'another-secret-entirely-here' } })
    const good = edge(list([eu!]), { secret })
    expect((await good.deposit('ivan', newKey())).status).toBe(201)
    const wrong = edge(list([us!]), { secret })
    const res = await wrong.deposit('ivan', newKey())
    // The receiver's refusal applied nothing (the one rule): not a final answer, so no origin gave one.
    expect(res.status).toBe(502)
    const fromEnv = edge(list([eu!]), { secret: { env: 'NO_SUCH_SECRET' } })
    expect((await fromEnv.deposit('ivan', newKey())).status).toBe(500)
    expect((await eu!.stats()).balances).toEqual({ ivan: 100 })
  })
})

describe('proxy(): bad origins', () => {
  it.each(['cut-body', 'short-length', 'garbage', 'bad-headers'] as const)('an origin answering %s fails that attempt and the next origin answers; alone, it gives a retryable 502', async (mode) => {
    const [good] = await startOrigins(['good'])
    const url = await badOrigin(mode)
    const both = edge([{ name: 'bad', url }, { name: 'good', url: good!.url }], { maxResponseBytes: 1024 * 1024 })
    const res = await both.deposit('judy', newKey())
    expect(res.status).toBe(201)
    expect(res.headers.get('once-origin')).toBe('good')
    const alone = edge([{ name: 'bad', url }], { maxResponseBytes: 1024 * 1024, maxAttempts: 2 })
    const failed = await alone.deposit('judy', newKey())
    expect([502, 504]).toContain(failed.status)
    expect(await problemOf(failed)).toMatchObject({ retryable: true })
  })

  it('maxResponseBytes bounds an encoded answer as decoded: a 20 KB gzip body that inflates to 20 MB is not read past it', async () => {
    const url = await badOrigin('gzip-bomb')
    const reads = new Hono()
    reads.get('/*', proxy({ origins: [{ name: 'eu', url }], strategy: 'hedge', maxResponseBytes: 1024 * 1024, maxAttempts: 1 }))
    const read = await reads.request('/report', {}, env)
    // A read applies nothing: its answer over the limit is a failed attempt (502), not reply-lost ("it took effect").
    expect(read.status).toBe(502)
    expect((await problemOf(read.clone())).type).toMatch(/origin-failed$/)
    expect((await read.arrayBuffer()).byteLength).toBeLessThan(64 * 1024)
    const writes = new Hono()
    writes.use('/*', once({ replayCache: false }))
    writes.post('/*', proxy({ origins: [{ name: 'eu', url }], strategy: 'failover', maxResponseBytes: 1024 * 1024, maxAttempts: 1 }))
    const write = await writes.request('/pay', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{}' }, env)
    expect((await write.arrayBuffer()).byteLength).toBeLessThan(64 * 1024)
  })

  it('does not follow a redirect: the 3xx is the answer', async () => {
    const url = await badOrigin('redirect')
    const { balance } = edge([{ name: 'r', url }])
    const res = await balance('kate')
    expect(res.status).toBe(302)
    expect(res.headers.get('location')).toBe('http://127.0.0.1:9/elsewhere')
  })

  it('an origin that never answers is bounded by timeoutMs and deadlineMs: 504', async () => {
    const url = await badOrigin('hang')
    const { deposit } = edge([{ name: 'h', url }], { timeoutMs: 200, deadlineMs: 700 })
    const started = Date.now()
    const res = await deposit('leo', newKey())
    expect(res.status).toBe(504)
    expect(Date.now() - started).toBeLessThan(2000)
  })
})

describe('proxy() options are validated when it is built', () => {
  it.each([
    [{ origins: [] }, /origins: expected at least 1/],
    [{ origins: [{ name: 'eu', url: 'not a url' }] }, /origins\.0/],
    [{ origins: [{ name: 'eu', url: 'https://svc:hunter2@a.example' }] }, /origins\.0\.url: expected no credentials in the URL/],
    [{ origins: [{ name: 'eu', url: 'https://a.example' }, { name: 'us', url: 'http://token@b.example/api' }] }, /origins\.1\.url: expected no credentials/],
    [{ origins: [{ name: 'eu', url: 'https://:pw@a.example' }] }, /origins\.0\.url: expected no credentials/],
    [{ origins: [{ name: 'eu', url: 'https://a.example' }, { name: 'eu', url: 'https://b.example' }] }, /unique origin names/],
    [{ origins: [{ name: 'eu', url: 'https://a.example' }], strategy: 'fastest' }, /strategy/],
    [{ origins: [{ name: 'eu', url: 'https://a.example' }], timeoutMs: -1 }, /timeoutMs/],
    [{ origins: [{ name: 'eu', url: 'https://a.example' }], hedgeAfterMs: 'soon' }, /hedgeAfterMs/],
    [{ origins: [{ name: 'eu', url: 'https://a.example' }], secret: 'a-literal-secret-of-length' }, /secret: a literal secret is refused/],
    [{ origins: [{ name: 'eu', url: 'https://a.example' }], secret: { env: '' } }, /secret\.env/],
    [{ origins: [{ name: 'eu', url: 'https://a.example' }], secret: { env: 'S', keyid: 'caf\u00e9' } }, /secret\.keyid/],
    [{ origins: [{ name: 'eu', url: 'https://a.example' }], forwardHeaders: ['bad header'] }, /forwardHeaders\.0/],
    [{ origins: [{ name: 'eu', url: 'https://a.example' }], breaker: { failures: 0 } }, /breaker\.failures/],
    [{ origins: [{ name: 'eu', url: 'https://a.example' }], retries: 3 }, /retries: unrecognized/],
  ])('%j', (options, message) => {
    expect(() => proxy(options as never)).toThrow(message)
  })
})
