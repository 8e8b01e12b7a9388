import { env } from 'cloudflare:workers'
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { once, proxy, type OnceOptions, type ProxyOptions } from '../../src/index.js'
import { verdictOf } from '../../src/shared/applied.js'
import { readReplicaAnswer } from '../../src/shared/quorum.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { eventually, type FarmOrigin, startOrigins } from '../farm.js'
import { newKey, problemOf } from '../helpers.js'

const list = (origins: FarmOrigin[]) => origins.map(({ name, url }) => ({ name, url }))
const effectsOf = async (origin: FarmOrigin) => Object.values((await origin.stats()).byRequestId).reduce((n, e) => n + e.applied, 0)
const problem = (type: string, status: number) => new TextEncoder().encode(JSON.stringify({ type, status, title: 't' }))
const PJ: [string, string] = ['content-type', 'application/problem+json']

describe('the one rule: was it applied? (DESIGN §6)', () => {
  it('Once-Applied decides when present; a gap is a gap unless it says applied (an app 409 may carry any header)', () => {
    expect(verdictOf(403, [['once-applied', '?1']])).toEqual({ kind: 'applied' })
    expect(verdictOf(503, [['once-applied', '?1']])).toEqual({ kind: 'applied' })
    expect(verdictOf(201, [['once-applied', '?0']])).toMatchObject({ kind: 'not-applied', permanent: false })
    expect(verdictOf(500, [['once-applied', '?0'], PJ], problem('https://hono-once.dev/problems/handler-failed', 500))).toEqual({ kind: 'not-applied', reason: 'handler-failed', permanent: true })
    expect(verdictOf(413, [['once-applied', '?0'], PJ], problem('https://hono-once.dev/problems/body-too-large', 413))).toMatchObject({ permanent: true })
    expect(verdictOf(503, [['once-applied', '?0'], PJ], problem('https://hono-once.dev/problems/store-unavailable', 503))).toMatchObject({ permanent: false })
    expect(verdictOf(409, [['once-applied', '?0'], ['once-expected-sequence', '4']])).toEqual({ kind: 'gap', expected: 4 })
    expect(verdictOf(409, [['once-applied', '?1'], ['once-expected-sequence', '4']])).toEqual({ kind: 'applied' })
    expect(verdictOf(409, [['once-applied', '?1'], PJ], problem('https://hono-once.dev/problems/sequence-pruned', 409))).toEqual({ kind: 'applied', answerGone: true })
  })

  it('Once-Applied is an RFC 8941 Boolean item: parameters are allowed and do not change it; anything else is no word', () => {
    expect(verdictOf(409, [['once-applied', '?0;reason="busy"']])).toMatchObject({ kind: 'not-applied' })
    expect(verdictOf(503, [['once-applied', '?1;at=1']])).toEqual({ kind: 'applied' })
    expect(verdictOf(503, [['once-applied', ' ?1 ']])).toEqual({ kind: 'applied' })
    // Not Booleans: the status decides.
    for (const v of ['1', 'true', '?', '?2', '"?1"', '?1, ?0', '']) {
      expect(verdictOf(503, [['once-applied', v]]).kind).toBe('not-applied')
      expect(verdictOf(201, [['once-applied', v]]).kind).toBe('applied')
    }
  })

  it("a replica's answer acknowledges only with Once-Applied a Boolean: another value is no word, whatever the status", () => {
    const reply = (value: string) => ({ status: 201, headers: [['once-applied', value]] as [string, string][], body: new Uint8Array() })
    for (const v of ['1', 'true', 'yes', '?', '"?1"']) expect(readReplicaAnswer('r1', reply(v))).toEqual({ kind: 'failed', permanent: false })
    expect(readReplicaAnswer('r1', reply('?1')).kind).toBe('applied')
    expect(readReplicaAnswer('r1', reply('?1;at=1')).kind).toBe('applied')
  })

  it("an app's own 5xx passed on ?0 is its last word (permanent, counts towards poison) unless 502, 503 or 504; 408 and 429 never", () => {
    for (const status of [500, 501, 505, 599]) expect(verdictOf(status, [['once-applied', '?0']])).toMatchObject({ kind: 'not-applied', permanent: true })
    for (const status of [502, 503, 504, 408, 429, 201, 409]) expect(verdictOf(status, [['once-applied', '?0']])).toMatchObject({ kind: 'not-applied', permanent: false })
    // The receiver's own temporary refusals keep their word, whatever their status.
    expect(verdictOf(500, [['once-applied', '?0'], PJ], problem('https://hono-once.dev/problems/store-unavailable', 500))).toMatchObject({ permanent: false })
    // Without Once-Applied (an origin without the receiver) a 500 stays temporary: it may be the server, not the request.
    expect(verdictOf(500, [])).toMatchObject({ kind: 'not-applied', permanent: false })
  })

  it('without the header: final unless 5xx, 408 or 429 (an app 403, a 409 with Retry-After, an app type ending in /bad-request are applied)', () => {
    expect(verdictOf(403, [])).toEqual({ kind: 'applied' })
    expect(verdictOf(409, [['retry-after', '5']])).toEqual({ kind: 'applied' })
    expect(verdictOf(400, [PJ], problem('https://bank.example/errors/bad-request', 400))).toEqual({ kind: 'applied' })
    for (const status of [500, 502, 503, 504, 408, 429]) expect(verdictOf(status, []).kind).toBe('not-applied')
    // A receiver from before Once-Applied: its own refusals, read by their full type URI only.
    expect(verdictOf(401, [PJ], problem('https://hono-once.dev/problems/signature-invalid', 401)).kind).toBe('not-applied')
    expect(verdictOf(409, [PJ, ['retry-after', '1']], problem('https://hono-once.dev/problems/in-flight', 409)).kind).toBe('not-applied')
  })

  it('property: a header that says applied always wins, and a status alone decides exactly as once() does', () => {
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 599 }), fc.constantFrom<string | null>('?1', '?0', null, 'yes'), fc.boolean(), (status, flag, expects) => {
        const headers: [string, string][] = flag === null ? [] : [['once-applied', flag]]
        if (expects) headers.push(['once-expected-sequence', '7'])
        if (status === 409 && expects && flag !== '?1') return verdictOf(status, headers).kind === 'gap'
        const v = verdictOf(status, headers)
        if (flag === '?1') return v.kind === 'applied'
        if (flag === '?0') return v.kind === 'not-applied'
        return v.kind === (status < 500 && status !== 408 && status !== 429 ? 'applied' : 'not-applied')
      }),
    )
  })
})

/** once() + failover in front of real bank origins. */
function edge(origins: { name: string; url: string }[], write: Partial<ProxyOptions> = {}, onceOptions: OnceOptions = {}) {
  const app = new Hono()
  app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false, ...onceOptions }))
  app.post('/accounts/*', proxy({ origins, strategy: 'failover', timeoutMs: 1500, deadlineMs: 6000, ...write }))
  return (account: string, key: string, amount = 100) =>
    app.request(`/accounts/${account}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: JSON.stringify({ amount }) }, env)
}

describe('an applied answer the edge cannot keep is reply-lost, final, and counts as applied', () => {
  it('failover: an answer over maxResponseBytes is committed as the catalogue 500 reply-lost (retryable: false, with instance, key and request id); the retry replays it; one send', async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    const deposit = edge(list([eu!, us!]), { maxResponseBytes: 8 })
    const key = newKey()
    const res = await deposit('ann', key)
    expect(res.status).toBe(500)
    const p = await problemOf(res)
    expect(p).toMatchObject({ type: expect.stringContaining('reply-lost'), status: 500, retryable: false, detail: expect.stringContaining('maxResponseBytes') })
    expect(p).toMatchObject({ instance: '/accounts/ann/deposits', idempotency_key: key, request_id: expect.any(String) })
    const again = await deposit('ann', key)
    expect(again.status).toBe(500)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect((await eu!.stats()).requests).toBe(1)
    expect((await us!.stats()).requests).toBe(0)
    expect(await effectsOf(eu!)).toBe(1)
  })

  it('replicate: an answer over maxResponseBytes is an acknowledgement; the entry is committed, no resends', async () => {
    const origins = await startOrigins(['r1', 'r2'])
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false, domain: (c) => c.req.path.split('/')[2]! }))
    app.post('/accounts/*', proxy({ origins: list(origins), strategy: 'replicate', maxResponseBytes: 8, timeoutMs: 1000, deadlineMs: 3000 }))
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const key = newKey()
    const send = () => app.request(`/accounts/${account}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":5}' }, env)
    const res = await send()
    expect(res.status).toBe(500)
    expect(await problemOf(res)).toMatchObject({ type: expect.stringContaining('reply-lost'), retryable: false, idempotency_key: key })
    const stub = env.ONCE.get(env.ONCE.idFromName(`once/domain/${account}`))
    const state = await eventually(
      async () => ((await (stub as unknown as StableAreaApi).domains())[0]),
      (d) => d?.replicas.every((r) => r.acked === 1) === true,
    )
    expect(state?.replicas.map((r) => r.state)).toEqual(['active', 'active'])
    for (let i = 0; i < 3; i++) await runDurableObjectAlarm(stub)
    for (const o of origins) expect((await o.stats()).requests).toBe(1)
    expect((await send()).headers.get('idempotent-replayed')).toBe('true')
    const pending = await runInDurableObject(stub, (_o, s) => s.storage.sql.exec(`SELECT count(*) AS n FROM log WHERE state = 'pending'`).one().n)
    expect(pending).toBe(0)
  })
})

describe('an admitted ordered request never expires before its commit (issue 15.1)', () => {
  it('every replica down, 502; past ttlSeconds the alarm keeps it; the retry gets the same slot, not a new one; applied once', async () => {
    const origins = await startOrigins(['r1', 'r2'])
    for (const o of origins) await o.faults({ down: true })
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 3000, ttlSeconds: 1, replayCache: false, domain: (c) => c.req.path.split('/')[2]! }))
    app.post('/accounts/*', proxy({ origins: list(origins), strategy: 'replicate', timeoutMs: 300, deadlineMs: 600 }))
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const key = newKey()
    const send = () => app.request(`/accounts/${account}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":100}' }, env)
    expect([502, 504]).toContain((await send()).status)
    const stub = env.ONCE.get(env.ONCE.idFromName(`once/domain/${account}`))
    // Past the TTL (counted from the admit, 1 s): the alarm runs, and must keep the pending record.
    await runInDurableObject(stub, (_o, s) => s.storage.sql.exec('UPDATE records SET expires_at = expires_at - 5000, created_at = created_at - 5000'))
    await runDurableObjectAlarm(stub)
    for (const o of origins) await o.faults({ down: false })
    const done = await eventually(
      async () => {
        await runDurableObjectAlarm(stub)
        return send()
      },
      (r) => r.status === 201,
      60,
      100,
    )
    expect(await done.json()).toMatchObject({ balance: 100 })
    const head = ((await (stub as unknown as StableAreaApi).domains())[0])?.head
    expect(head).toBe(1) // the same slot: the retry was not admitted as a new request
    for (const o of origins) {
      await eventually(() => o.stats(), (s) => s.balances[account] === 100)
      expect(await effectsOf(o)).toBe(1)
    }
    // Its TTL counts from the commit: the committed record lives on.
    const expiresIn = await runInDurableObject(stub, (_o, s) => s.storage.sql.exec<{ t: number }>('SELECT expires_at - committed_at AS t FROM records').one().t)
    expect(expiresIn).toBe(1000)
  }, 30_000)
})

describe('on ordered routes a key is unique per scope and domain (issue 15.6)', () => {
  it('the isolate reply cache never answers one domain with another domain’s reply', async () => {
    const origins = await startOrigins(['r1'])
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 3000, domain: (c) => c.req.header('x-account')! }))
    app.post('/accounts/*', proxy({ origins: list(origins), strategy: 'replicate', timeoutMs: 1000, deadlineMs: 3000 }))
    const key = newKey()
    const a = `acct-${crypto.randomUUID().slice(0, 8)}`
    const b = `acct-${crypto.randomUUID().slice(0, 8)}`
    const send = (domain: string, account: string) =>
      app.request(`/accounts/${account}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'x-account': domain, 'content-type': 'application/json' }, body: '{"amount":7}' }, env)
    const first = await send(a, 'shared')
    expect(first.status).toBe(201)
    expect((await send(a, 'shared')).headers.get('idempotent-replayed')).toBe('true') // now in the cache
    const other = await send(b, 'shared')
    // Another domain: its own request, with its own sequence in its own domain, never the first domain's cached reply.
    expect(other.headers.get('idempotent-replayed')).toBeNull()
    expect(other.headers.get('once-sequence')).toBe('1')
    expect((await origins[0]!.stats()).applied.filter((e) => e.domain === b)).toHaveLength(1)
  })
})
