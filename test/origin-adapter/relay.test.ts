import { env } from 'cloudflare:workers'
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { dispatch, once, proxy, type ProxyOptions } from '../../src/index.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { fingerprint } from '../../src/middleware/fingerprint.js'
import { lookupKey } from '../../src/middleware/identity.js'
import { forwardRequest } from '../../src/origin-adapter/forward.js'
import type { RelayPlan } from '../../src/origin-adapter/types.js'
import { eventually, type FarmOrigin, startOrigins } from '../farm.js'
import { expireLeases, newKey, recordOf, stubFor } from '../helpers.js'

const body = JSON.stringify({ amount: 100 })
const planFor = (origins: Pick<FarmOrigin, 'name' | 'url'>[]): RelayPlan => ({
  strategy: 'failover',
  origins: origins.map(({ name, url }) => ({ name, url })),
  timeoutMs: 1000,
  deadlineMs: 3000,
  maxAttempts: 3,
  maxResponseBytes: 1 << 20,
})

/** Plays a Worker that admitted a relayed deposit (its relay durable), then died before sending anything. */
async function crashedRelay(key: string, account: string, origins: Pick<FarmOrigin, 'name' | 'url'>[]) {
  const url = `http://localhost/accounts/${account}/deposits`
  const req = new Request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  const bytes = new TextEncoder().encode(body)
  const print = await fingerprint({ method: 'POST', url, headers: req.headers, body: bytes })
  const stub = (await stubFor(key)) as unknown as StableAreaApi
  const admitted = await stub.admit({
    lookup: lookupKey('', key),
    fingerprint: print,
    leaseMs: 3000,
    ttlMs: 86_400_000,
    waitMs: 0,
    relay: { request: forwardRequest(req, bytes), plan: planFor(origins), key },
  })
  if (admitted.kind !== 'new') throw new Error(`expected new, got ${admitted.kind}`)
  return admitted
}

function edge(origins: FarmOrigin[]) {
  const app = new Hono()
  app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false }))
  app.post('/accounts/*', proxy({ origins: origins.map(({ name, url }) => ({ name, url })), strategy: 'failover', timeoutMs: 1000, deadlineMs: 3000 }))
  const deposit = (account: string, key: string) =>
    app.request(`/accounts/${account}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body }, env)
  return { deposit }
}

describe('relays: a Worker that dies mid-dispatch (seed 003, Figs. 14–18)', () => {
  it('the relay is durable before the first send: the record of a proxied write carries it, and the commit completes it', async () => {
    const [eu] = await startOrigins(['eu'])
    const key = newKey()
    expect((await edge([eu!]).deposit('al', key)).status).toBe(201)
    const relayRow = async () =>
      (await import('cloudflare:test')).runInDurableObject(await stubFor(key), (_o, state) =>
        state.storage.sql.exec('SELECT state, sends, method, path FROM relays WHERE lookup = ?', lookupKey('', key)).toArray()[0],
      )
    // The commit follows the answer (proxy() answers first), so it is waited for.
    const relay = await eventually(relayRow, (r) => r?.state === 'completed')
    expect(relay).toEqual({ state: 'completed', sends: 1, method: 'POST', path: '/accounts/al/deposits' })
  })

  it('once its lease ends, the alarm resends it with the same request id, commits the answer, and the client later replays it', async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    await eu!.faults({ down: true }) // the alarm fails over too
    const key = newKey()
    const admitted = await crashedRelay(key, 'bo', [eu!, us!])
    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    expect(await recordOf(key)).toMatchObject({ state: 'committed', status: 201, request_id: admitted.requestId })
    const stats = await us!.stats()
    expect(stats.byRequestId[admitted.requestId]).toMatchObject({ applied: 1 })
    // The client comes back long after: the stored answer, no new send.
    const res = await edge([eu!, us!]).deposit('bo', key)
    expect(res.status).toBe(201)
    expect(res.headers.get('idempotent-replayed')).toBe('true')
    expect(res.headers.get('once-origin')).toBe('us')
    expect(await res.json()).toEqual({ id: 'bo', balance: 100 })
    expect((await us!.stats()).requests).toBe(1)
  })

  it('a client retry that comes first takes the relay over: next attempt, same request id, applied once', async () => {
    const [eu] = await startOrigins(['eu'])
    const key = newKey()
    const admitted = await crashedRelay(key, 'cy', [eu!])
    await expireLeases(key)
    const res = await edge([eu!]).deposit('cy', key)
    expect(res.status).toBe(201)
    // The alarm finds nothing left to do.
    await runDurableObjectAlarm(await stubFor(key))
    const stats = await eu!.stats()
    expect(Object.keys(stats.byRequestId)).toEqual([admitted.requestId])
    expect(stats.byRequestId[admitted.requestId]).toMatchObject({ received: 1, applied: 1 })
  })

  it('an alarm resend that finds every origin down tries again later; the key is free for the client meanwhile', async () => {
    const [eu] = await startOrigins(['eu'])
    await eu!.faults({ down: true })
    const key = newKey()
    await crashedRelay(key, 'di', [eu!])
    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    expect(await recordOf(key)).toMatchObject({ state: 'in_flight' })
    await eu!.faults({ down: false })
    const res = await edge([eu!]).deposit('di', key)
    expect(res.status).toBe(201)
    expect((await eu!.stats()).balances).toEqual({ di: 100 })
  })

  it('the alarm is idempotent: run twice, the origin sees one request', async () => {
    const [eu] = await startOrigins(['eu'])
    const key = newKey()
    const admitted = await crashedRelay(key, 'ed', [eu!])
    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    await runDurableObjectAlarm(await stubFor(key))
    expect((await eu!.stats()).byRequestId[admitted.requestId]).toMatchObject({ received: 1, applied: 1 })
  })

  it('dispatch() inside a handler stores no relay: the alarm never sends (or commits) what a handler dispatched', async () => {
    const [eu] = await startOrigins(['eu'])
    const options: ProxyOptions = { origins: [{ name: 'eu', url: eu!.url }], strategy: 'failover' }
    const app = new Hono()
    let seenRelay: unknown
    app.post('/accounts/:id/deposits', once({ replayCache: false }), async (c) => {
      const res = await dispatch(c, undefined, options)
      seenRelay = await (await import('cloudflare:test')).runInDurableObject(await stubFor(c.var.once.key), (_o, state) =>
        state.storage.sql.exec('SELECT state FROM relays WHERE lookup = ?', lookupKey('', c.var.once.key)).toArray()[0],
      )
      return res
    })
    const key = newKey()
    const res = await app.request('/accounts/fa/deposits', { method: 'POST', headers: { 'idempotency-key': key }, body }, env)
    expect(res.status).toBe(201)
    expect(seenRelay).toBeUndefined()
  })

  it('two dispatch() calls in one handler are two requests to the origins: the second gets its own request id', async () => {
    const [eu] = await startOrigins(['eu'])
    const options: ProxyOptions = { origins: [{ name: 'eu', url: eu!.url }], strategy: 'failover' }
    const app = new Hono()
    app.post('/transfer', once({ replayCache: false }), async (c) => {
      const out = await dispatch(c, new Request(`${new URL(c.req.url).origin}/accounts/from/deposits`, { method: 'POST', body: '{"amount":3}' }), options)
      const into = await dispatch(c, new Request(`${new URL(c.req.url).origin}/accounts/to/deposits`, { method: 'POST', body: '{"amount":7}' }), options)
      return c.json({ out: out.status, into: await into.json() }, 201)
    })
    const res = await app.request('/transfer', { method: 'POST', headers: { 'idempotency-key': newKey() }, body: '{}' }, env)
    expect(await res.json()).toEqual({ out: 201, into: { id: 'to', balance: 7 } })
    const ids = Object.keys((await eu!.stats()).byRequestId)
    expect(ids).toHaveLength(2)
    expect(ids.some((id) => id.endsWith('/2'))).toBe(true)
  })

  it("keeps a request's forwarded headers and body only while its relay is processing: a released relay (every origin down) holds no credential; the retry brings them again", async () => {
    const [eu] = await startOrigins(['eu'])
    await eu!.faults({ down: true })
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false }))
    app.post('/accounts/*', proxy({ origins: [{ name: 'eu', url: eu!.url }], strategy: 'failover', timeoutMs: 1000, deadlineMs: 3000, forwardHeaders: ['authorization', 'content-type'] }))
    const key = newKey()
    const deposit = () =>
      app.request('/accounts/gi/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json', authorization: 'Bearer SECRET-TOKEN' }, body }, env)
    const relayRow = async () =>
      (await import('cloudflare:test')).runInDurableObject(await stubFor(key), (_o, state) =>
        // The caller's Authorization scopes the key: the relay is found by its key.
        state.storage.sql.exec<{ state: string; headers: string; body: ArrayBuffer | null }>('SELECT state, headers, body FROM relays WHERE key = ?', key).one(),
      )
    expect((await deposit()).status).toBe(502)
    const released = await relayRow()
    expect(released).toMatchObject({ state: 'released', headers: '[]', body: null })
    await eu!.faults({ down: false })
    expect((await deposit()).status).toBe(201)
    expect(await relayRow()).toMatchObject({ state: 'completed', headers: '[]', body: null })
    expect((await eu!.stats()).balances).toEqual({ gi: 100 })
  })

  it('a processing relay keeps its request for the resend, and loses it once the resend is committed', async () => {
    const [eu] = await startOrigins(['eu'])
    const key = newKey()
    await crashedRelay(key, 'ha', [eu!])
    const relayRow = async () =>
      (await import('cloudflare:test')).runInDurableObject(await stubFor(key), (_o, state) =>
        state.storage.sql.exec<{ state: string; headers: string; body: ArrayBuffer | null }>('SELECT state, headers, body FROM relays WHERE lookup = ?', lookupKey('', key)).one(),
      )
    const processing = await relayRow()
    expect(processing.state).toBe('processing')
    expect(processing.body).not.toBeNull()
    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    expect(await relayRow()).toMatchObject({ state: 'completed', headers: '[]', body: null })
  })

  it("one route's dead origin does not take the retries of another route's origin of the same name (health is kept per set of origins)", async () => {
    const [dead, live] = await startOrigins(['eu', 'eu2'])
    await dead!.faults({ down: true })
    // Two routes (two gateways' routes, or two proxy() calls) both call their origin "eu"; their relays share a shard.
    const routeA = [{ name: 'eu', url: dead!.url }]
    const routeB = [{ name: 'eu', url: live!.url }]
    const keysA = [newKey(), newKey(), newKey(), newKey()]
    for (const [i, key] of keysA.entries()) await crashedRelay(key, `ra${i}`, routeA)
    await expireLeases(keysA[0]!)
    // Four resends of route A, all failing: they spend the retry tokens of (and open the breaker of) their "eu".
    await runDurableObjectAlarm(await stubFor(keysA[0]!))
    expect(await recordOf(keysA[0]!)).toMatchObject({ state: 'in_flight' })
    const key = newKey()
    const admitted = await crashedRelay(key, 'rb', routeB)
    await expireLeases(key)
    // Route B's origin fails its first send: the resend's retry to it must go (its own tokens are all there).
    await live!.faults({ failNext: 1 })
    await runDurableObjectAlarm(await stubFor(key))
    expect(await recordOf(key)).toMatchObject({ state: 'committed', status: 201, request_id: admitted.requestId })
    expect((await live!.stats()).byRequestId[admitted.requestId]).toMatchObject({ applied: 1 })
  })
})

describe('what a relay keeps once it is over (review s30, audit S30-2)', () => {
  it("a completed relay keeps method and path, not the query: ?api_key=… is gone with the headers and body", async () => {
    const [eu] = await startOrigins(['eu'])
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false }))
    app.post('/accounts/*', proxy({ origins: [{ name: 'eu', url: eu!.url }], strategy: 'failover', timeoutMs: 1000, deadlineMs: 3000 }))
    const key = newKey()
    const res = await app.request(
      '/accounts/qa/deposits?api_key=SECRET-QUERY-KEY-123&x=1',
      { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: JSON.stringify({ amount: 100 }) },
      env,
    )
    expect(res.status).toBe(201)
    // The origin got the query: only what stays at rest loses it.
    expect(Object.keys((await eu!.stats()).byRequestId)).toHaveLength(1)
    const stub = await stubFor(key)
    const row = await eventually(
      () => runInDurableObject(stub, (_o, state) => state.storage.sql.exec<{ state: string; path: string; headers: string; body: ArrayBuffer | null }>('SELECT state, path, headers, body FROM relays WHERE key = ?', key).toArray()[0]),
      (r) => r?.state === 'completed',
    )
    expect(row).toMatchObject({ path: '/accounts/qa/deposits', headers: '[]', body: null })
  })
})
