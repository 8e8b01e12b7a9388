import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { FEED_BATCH } from '../../src/durable/catch-up.js'
import { SPREAD_PER_RUN } from '../../src/durable/directory-spread.js'
import type { StatusSnapshot } from '../../src/durable/status-figures.js'
import type { StableArea } from '../../src/durable/stable-area.js'
import type { DomainStatus, StableAreaApi } from '../../src/durable/types.js'
import { eventually, type FarmOrigin, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'

/**
 * Issue 15 item 20 (seed 000 claims 18–24): a replica added to `origins` is brought up to date on every domain,
 * quiet ones included, by the alarms, in batches, without waiting for traffic; one removed is fed no more; the
 * status figures show how far it has joined.
 */

type Replica = { name: string; url: string }

function replicatedBank(origins: Replica[], options: { logRetentionMs?: number } = {}) {
  const app = new Hono()
  app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false, domain: (c) => c.req.path.split('/')[2]! }))
  app.post('/accounts/*', proxy({ origins, strategy: 'replicate', timeoutMs: 1000, deadlineMs: 4000, ackQuorum: 1, ...options }))
  return (account: string, amount = 1) =>
    app.request(`/accounts/${account}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: JSON.stringify({ amount }) }, env)
}

const asReplicas = (origins: FarmOrigin[]) => origins.map(({ name, url }) => ({ name, url }))
const domainStub = (domain: string) => env.ONCE.get(env.ONCE.idFromName(`once/domain/${domain}`))
const statusStub = () => env.ONCE.get(env.ONCE.idFromName('once/status'))
const domainState = async (domain: string): Promise<DomainStatus | undefined> =>
  (await (domainStub(domain) as unknown as StableAreaApi).domains()).find((d) => d.domain === domain)
const readStatus = () => (statusStub() as unknown as { readStatus(): Promise<StatusSnapshot> }).readStatus()
const applied = async (o: FarmOrigin, domain: string) => (await o.stats()).applied.filter((a) => a.domain === domain)

/** Puts the object's alarm far ahead (so it does not run by itself meanwhile), then runs it once, now. */
async function runAlarmOnce(stub: DurableObjectStub<StableArea>) {
  await runInDurableObject(stub, (_i, state) => state.storage.setAlarm(Date.now() + 60_000))
  expect(await runDurableObjectAlarm(stub), 'the alarm ran').toBe(true)
  await runInDurableObject(stub, (_i, state) => state.storage.setAlarm(Date.now() + 60_000)) // no run by itself before the test looks
}

/** Makes the object's status report due now and runs its alarm once. */
async function reportNow(stub: DurableObjectStub<StableArea>) {
  await runInDurableObject(stub, (_i, state) => void state.storage.sql.exec(`INSERT INTO counters (name, total) VALUES ('report_due', 0) ON CONFLICT (name) DO UPDATE SET total = 0`))
  await runAlarmOnce(stub)
}

/**
 * Runs a domain's alarm (bounded) until `name` is active at the head; returns how many runs it took. A run the
 * object started by itself may still be feeding: the test's run then leaves that pair to it (bounded polling).
 */
async function joinedAfter(domain: string, name: string, tries = 60): Promise<number> {
  for (let runs = 0; runs < tries; runs++) {
    const state = await domainState(domain)
    if (state?.replicas.some((r) => r.name === name && r.state === 'active' && r.acked === state.head)) return runs
    await runAlarmOnce(domainStub(domain))
    if (runs > 0) await scheduler.wait(50)
  }
  throw new Error(`${name} never joined ${domain}: ${JSON.stringify(await domainState(domain))}`)
}

const listed = async (domain: string, name: string) => (await domainState(domain))?.replicas.some((r) => r.name === name) ?? false

describe('a replica added to origins joins every domain (issue 15 item 20)', () => {
  it('is fed every quiet domain from the log by the alarms, in batches, each entry once and in order; the status figures show its progress', async () => {
    const origins = await startOrigins(['j1', 'j2', 'j3', 'j4'])
    const [j1, , , j4] = origins
    const three = replicatedBank(asReplicas(origins.slice(0, 3)))
    const tag = crypto.randomUUID().slice(0, 6)
    // More domains than one run of the directory tells, the last with a longer log than one feed batch.
    const domains = Array.from({ length: SPREAD_PER_RUN + 3 }, (_, i) => `join-${tag}-${i}`)
    const long = domains.at(-1)!
    const writes = (i: number) => (i === domains.length - 1 ? FEED_BATCH + 5 : 1 + (i % 3))
    for (const [i, d] of domains.entries()) for (let k = 0; k < writes(i); k++) expect((await three(d)).status).toBe(201)
    for (const d of domains) {
      await eventually(() => domainState(d), (s) => s?.replicas.every((r) => r.state === 'active' && r.acked === s.head) ?? false)
      await reportNow(domainStub(d)) // the status object hears of every domain, as their alarms report
    }

    // The fourth replica is added to origins; one write, to one domain only, brings the new origins to the edge's objects.
    const four = replicatedBank(asReplicas(origins))
    expect((await four(domains[0]!)).status).toBe(201)
    await reportNow(domainStub(domains[0]!))
    await runInDurableObject(statusStub(), (_i, state) => state.storage.setAlarm(Date.now() + 60_000)) // the test runs it
    const quiet = domains.slice(1)
    // Before the directory's push, no quiet domain knows j4 (today's defect: it never would, until a write).
    for (const d of quiet) expect(await listed(d, 'j4')).toBe(false)

    // The status object's alarm tells the quiet domains, at most SPREAD_PER_RUN per run.
    await runAlarmOnce(statusStub())
    const told = (await Promise.all(quiet.map((d) => listed(d, 'j4')))).filter(Boolean).length
    expect(told).toBe(SPREAD_PER_RUN)
    const midway = (await readStatus()).joins.find((j) => j.name === 'j4')
    expect(midway).toMatchObject({ domains: domains.length, waiting: quiet.length - SPREAD_PER_RUN })
    expect(midway!.upToDate).toBeLessThan(domains.length)
    await runAlarmOnce(statusStub()) // the rest, the long domain among them (the directory tells them in report order)
    await runInDurableObject(domainStub(long), (_i, state) => state.storage.setAlarm(Date.now() + 60_000)) // the test runs it
    for (const d of quiet) expect(await listed(d, 'j4'), `${d} told`).toBe(true)
    expect((await readStatus()).joins.find((j) => j.name === 'j4')).toMatchObject({ waiting: 0 })

    // Each domain's own alarm feeds j4 its log: the long one in two runs of at most FEED_BATCH entries.
    expect(await applied(j4!, long)).toEqual([])
    await runAlarmOnce(domainStub(long))
    const firstBatch = (await applied(j4!, long)).length
    expect(firstBatch).toBeGreaterThan(0)
    expect(firstBatch).toBeLessThanOrEqual(FEED_BATCH)
    expect(await joinedAfter(long, 'j4')).toBe(1)
    for (const d of domains) await joinedAfter(d, 'j4')

    // Exactly once and in order: j4's history of every domain is j1's, and it got one request per entry.
    let entries = 0
    for (const d of domains) {
      const [h1, h4] = await Promise.all([applied(j1!, d), applied(j4!, d)])
      expect(h4.map((a) => [a.sequence, a.requestId])).toEqual(h1.map((a) => [a.sequence, a.requestId]))
      expect(h4.map((a) => a.sequence)).toEqual(Array.from({ length: h4.length }, (_, i) => i + 1))
      entries += (await domainState(d))!.head
    }
    const stats = await j4!.stats()
    expect(stats.applied.length).toBe(entries)
    expect(Object.entries(stats.byRequestId).filter(([, r]) => r.received !== 1 || r.applied !== 1)).toEqual([])

    // The status figures: every domain up to date once the objects have reported.
    for (const d of domains) await reportNow(domainStub(d))
    expect((await readStatus()).joins.find((j) => j.name === 'j4')).toEqual({ name: 'j4', domains: domains.length, upToDate: domains.length, joining: 0, resync: 0, waiting: 0 })
  })

  it('a replica removed from origins stops being fed, in the quiet domains too', async () => {
    const origins = await startOrigins(['k1', 'k2', 'k3', 'k4'])
    const [, , , k4] = origins
    await k4!.faults({ down: true })
    const four = replicatedBank(asReplicas(origins))
    const tag = crypto.randomUUID().slice(0, 6)
    const domains = Array.from({ length: 5 }, (_, i) => `leave-${tag}-${i}`)
    for (const d of domains) for (let k = 0; k < 3; k++) expect((await four(d)).status).toBe(201)
    for (const d of domains) {
      await eventually(() => domainState(d), (s) => s?.replicas.find((r) => r.name === 'k4')?.state === 'lagging')
      await reportNow(domainStub(d))
    }
    // k4 is taken out of origins; one write to one domain says so.
    const three = replicatedBank(asReplicas(origins.slice(0, 3)))
    expect((await three(domains[0]!)).status).toBe(201)
    await reportNow(domainStub(domains[0]!))
    await runAlarmOnce(statusStub())
    for (const d of domains) expect(await listed(d, 'k4')).toBe(false)
    // It comes back up: no domain's alarm feeds it anything.
    await k4!.faults({ down: false })
    const before = (await k4!.stats()).requests
    for (const d of domains) for (let i = 0; i < 3; i++) await runAlarmOnce(domainStub(d))
    expect((await k4!.stats()).requests).toBe(before)
    for (const d of domains) await reportNow(domainStub(d))
    const joins = (await readStatus()).joins
    expect(joins.find((j) => j.name === 'k4')).toBeUndefined()
    expect(joins.find((j) => j.name === 'k1')).toMatchObject({ domains: domains.length, upToDate: domains.length })
  })

  it('a joining replica of a quiet domain whose log was pruned is marked stale (it needs a snapshot), and the figures say so', async () => {
    const origins = await startOrigins(['p1', 'p2', 'p3'])
    // The same replica set (the directory compares origins only), the quiet domain's log kept for no time at all.
    const [two, twoPruning] = [replicatedBank(asReplicas(origins.slice(0, 2))), replicatedBank(asReplicas(origins.slice(0, 2)), { logRetentionMs: 0 })]
    const tag = crypto.randomUUID().slice(0, 6)
    const [busy, pruned] = [`busy-${tag}`, `pruned-${tag}`]
    for (let k = 0; k < 3; k++) expect((await two(busy)).status).toBe(201)
    for (let k = 0; k < 3; k++) expect((await twoPruning(pruned)).status).toBe(201)
    await eventually(() => domainState(pruned), (s) => s?.replicas.every((r) => r.acked === 3) ?? false)
    await runAlarmOnce(domainStub(pruned)) // prunes what both acknowledged
    expect((await domainState(pruned))?.prunedThrough).toBe(3)
    for (const d of [busy, pruned]) await reportNow(domainStub(d))
    const three = replicatedBank(asReplicas(origins))
    expect((await three(busy)).status).toBe(201)
    // p3's answer is recorded with the commit, which follows the answer.
    await eventually(() => domainState(busy), (s) => s?.replicas.find((r) => r.name === 'p3')?.acked === 4)
    await reportNow(domainStub(busy))
    await runAlarmOnce(statusStub())
    await runAlarmOnce(domainStub(pruned))
    expect((await domainState(pruned))?.replicas.find((r) => r.name === 'p3')).toMatchObject({ state: 'stale', reason: expect.stringMatching(/needs sequences 1–3.*snapshot/) })
    expect((await origins[2]!.stats()).applied.filter((a) => a.domain === pruned)).toEqual([])
    await reportNow(domainStub(pruned))
    expect((await readStatus()).joins.find((j) => j.name === 'p3')).toMatchObject({ domains: 2, upToDate: 1, resync: 1 })
  })
})
