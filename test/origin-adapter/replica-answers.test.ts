import { env } from 'cloudflare:workers'
import { runDurableObjectAlarm } from 'cloudflare:test'
import { Hono } from 'hono'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { dispatch, once, proxy, type ProxyOptions } from '../../src/index.js'
import gateway from '../../src/gateway.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { originGroup, proxyWith } from '../../src/origin-adapter/dispatch.js'
import { badOrigin, eventually, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { bank, failingCommits, list, recordsOf, sql, stateOf, stubOf } from './domains.js'

/*
 * Found by a review of the s27 fixes (a7c798f..4190292), edge half; each test failed at 4190292.
 */

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
})

describe('E1: the tie rule under ackQuorum 1 (docs: ties are for majority/all)', () => {
  it('two replicas, ackQuorum 1, one diverges, the Worker’s commit fails: the diverging one is suspect, the client’s 201 is committed by the alarm, the domain goes on', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2'])
    await origins[0]!.faults({ latencyMs: 0 })
    await origins[1]!.faults({ latencyMs: 150, wrongBalance: true })
    const control = failingCommits()
    const deposit = bank(list(origins), { ackQuorum: 1 }, control.ns)
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const res = await deposit(account, newKey(), 5)
    expect(res.status).toBe(201) // r1's answer, given first; the commit after it fails
    expect(res.headers.get('once-origin')).toBe('r1')
    await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.acked === 1) === true)
    control.heal()
    for (let i = 0; i < 4; i++) {
      await sql(account, `UPDATE records SET lease_until = ${Date.now() - 1}`)
      await sql(account, 'UPDATE log SET retry_at = NULL')
      await sql(account, 'UPDATE replicas SET next_at = NULL')
      await runDurableObjectAlarm(stubOf(account))
    }
    const state = await stateOf(account)
    const records = await recordsOf(account)
    const next = await bank(list(origins), { ackQuorum: 1 })(account, newKey(), 1)
    warn.mockRestore()
    error.mockRestore()
    // As docs/replication.md says for ackQuorum 1: the answer the client got (r1's) is the reference; r2 alone is suspect, the
    // alarm commits r1's answer, the domain goes on. At 4190292: the acknowledge without a committed reference is a "tie", both are
    // suspect, the alarm has no replica to ask, the record stays in_flight for ever and every write answers 504.
    expect({ r1: state?.replicas.find((r) => r.name === 'r1')?.state, record: records[0]?.state, next: next.status }).toEqual({ r1: 'active', record: 'committed', next: 201 })
  })
})

describe('E2: an answer without Once-Applied over maxResponseBytes', () => {
  it('is no acknowledgement either: a replica URL serving a big non-receiver page applies nothing', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const [r1] = await startOrigins(['r1'], { latencyMs: 300 })
    const page = await badOrigin('huge') // 200 text/plain, 10 MiB, no Once-Applied: a proxy's page, not the receiver
    const deposit = bank([{ name: 'r0', url: page }, { name: 'r1', url: r1!.url }], { ackQuorum: 1, maxResponseBytes: 64 * 1024 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const res = await deposit(account, newKey(), 3)
    const state = await stateOf(account)
    warn.mockRestore()
    error.mockRestore()
    // The rule of 314150a ("an answer without Once-Applied is no acknowledgement") holds for a small page (ordering-faults.test.ts),
    // not for a large one: tooLargeAnswer() turns it into reply-lost with Once-Applied: ?1, which readReplicaAnswer counts.
    expect({ status: res.status, r0: state?.replicas.find((r) => r.name === 'r0')?.acked }).toEqual({ status: 201, r0: 0 })
  })
})

describe('E3: the gateway, one origin drained', () => {
  it('a failover route whose only origin is drained leaves the rest of the gateway serving', async () => {
    const origins = await startOrigins(['eu', 'us'])
    const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext
    const config = {
      origins: [
        { name: 'eu', url: origins[0]!.url },
        { name: 'us', url: origins[1]!.url, drain: true }, // maintenance on us
      ],
      routes: [
        { path: '/accounts/*', methods: ['GET'], strategy: 'hedge' },
        { path: '/reports/*', methods: ['GET'], strategy: 'failover', origins: ['us'] }, // served by us only
      ],
    }
    const res = await gateway.fetch!(
      new Request(`http://gateway.test/accounts/a1`) as Request<unknown, IncomingRequestCfProperties>,
      { ONCE: env.ONCE, ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET, ONCE_CONFIG: JSON.stringify(config) } as never,
      ctx,
    )
    // Before (a7c798f): /accounts/* served (200); only /reports/* had no origin. Now: the whole gateway is misconfigured.
    expect(res.status).toBe(200)
  })
})

describe("E4: BY_OPERATOR is every operator state's reason, not only a drain's", () => {
  it("a replica an operator set 'lagging' that a deploy then drains is back in rotation after the deploy that undrains it", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2', 'r3'])
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const plain = list(origins)
    const drained = plain.map((o) => (o.name === 'r2' ? { ...o, drain: true } : o))
    expect((await bank(plain, { maxAttempts: 1 })(account, newKey(), 1)).status).toBe(201)
    await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.acked === 1) === true)
    // r2 goes down and misses sequence 2; it is repaired, and the operator puts it back (it is still catching up: down again meanwhile).
    await origins[1]!.faults({ down: true })
    expect((await bank(plain, { maxAttempts: 1 })(account, newKey(), 1)).status).toBe(201)
    await eventually(() => stateOf(account), (s) => s?.replicas.find((r) => r.name === 'r2')?.state === 'lagging')
    expect(await (stubOf(account) as unknown as StableAreaApi).setReplica(account, 'r2', 'lagging')).toBe(true)
    // A deploy drains r2 (maintenance), the next one takes drain off.
    expect((await bank(drained, { maxAttempts: 1 })(account, newKey(), 1)).status).toBe(201)
    expect((await stateOf(account))?.replicas.find((r) => r.name === 'r2')?.state).toBe('draining')
    expect((await bank(plain, { maxAttempts: 1 })(account, newKey(), 1)).status).toBe(201)
    const r2 = (await stateOf(account))?.replicas.find((r) => r.name === 'r2')
    warn.mockRestore()
    error.mockRestore()
    // docs/replication.md: "taking drain off puts it back (lagging)". At 4190292: draining for good (its reason is still the
    // operator's from the setReplica(…, 'lagging')), and the status page says "set by an operator".
    expect(r2?.state).toBe('lagging')
  })
})

describe("E5: a client's POST to a path the origins do not serve (unordered, failover)", () => {
  it('is the final 404 it was: the edge does not try every origin, answer 502 or count failures against them', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const origins = await startOrigins(['eu', 'us'])
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false }))
    app.post('/accounts/*', proxy({ origins: list(origins), timeoutMs: 1000, deadlineMs: 3000 }))
    // "transfer" is no route of the bank (deposits, withdrawals): a client's typo, a stale client, a scanner.
    const res = await app.request('/accounts/a1/transfer', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{"amount":1}' }, env)
    warn.mockRestore()
    expect(res.status).toBe(404)
  })
})

describe('E5b: the not-found 404 ?0 counts against the origins’ health', () => {
  it('a few POSTs to an unserved path open no origin’s breaker', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const origins = await startOrigins(['eu', 'us'])
    const options: ProxyOptions = { origins: list(origins), timeoutMs: 1000, deadlineMs: 3000 }
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false, unscoped: 'shared' }))
    const group = originGroup(options, 'proxy()')
    app.post('/accounts/*', proxyWith(group))
    for (let i = 0; i < 4; i++) {
      await app.request('/accounts/a1/transfer', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{"amount":1}' }, env)
    }
    const health = group.health
    warn.mockRestore()
    // A 404 for a path no origin serves is the client's mistake, not an origin failure.
    expect(['eu', 'us'].map((n) => health.breakerOf(n).state)).toEqual(['closed', 'closed'])
  })
})
