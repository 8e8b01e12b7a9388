import { env } from 'cloudflare:workers'
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { once, proxy, type DivergenceEvent, type ProxyOptions } from '../../src/index.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { badOrigin, eventually, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { bank, failingCommits, list, recordsOf, sql, stateOf, stubOf } from './domains.js'

/*
 * Found by an adversarial review of the edge's replication and ordering (s27); each test failed on a7c798f.
 */

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
})

describe('divergence between two replicas under a quorum of two', () => {
  it("ackQuorum 'majority', two replicas answering differently: both reported and suspect, the retry told why, and the request finished once an operator clears one", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2'])
    await origins[0]!.faults({ wrongBalance: true })
    const events: DivergenceEvent[] = []
    const deposit = bank(list(origins), { ackQuorum: 'majority', onDivergence: (e) => void events.push(e) })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const key = newKey()
    const first = await deposit(account, key, 1)
    expect(first.status).toBe(502) // no answer a majority gave: nothing to give the client
    // A tie nothing breaks: each replica is suspect against the other's answer, and both are reported.
    await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.state === 'suspect') === true)
    await eventually(async () => events.length, (n) => n === 2)
    expect(events.map((e) => e.origin).sort()).toEqual(['r1', 'r2'])
    // The retry is told the domain has no replica in rotation, and why (not a timeout).
    const retry = await deposit(account, key, 1)
    expect(retry.status).toBe(504)
    expect(((await retry.json()) as { detail: string }).detail).toMatch(/No replica of domain .* is in rotation \(r1 suspect, r2 suspect\)/)
    // An operator finds r2 right and puts it back: the alarm commits r2's answer for the client, without a resend to r1.
    expect(await (stubOf(account) as unknown as StableAreaApi).setReplica(account, 'r2', 'lagging')).toBe(true)
    await sql(account, `UPDATE records SET lease_until = ${Date.now() - 1}`)
    await sql(account, 'UPDATE log SET retry_at = NULL')
    await runDurableObjectAlarm(stubOf(account))
    expect((await recordsOf(account))[0]).toMatchObject({ state: 'committed', status: 201 })
    const replay = await deposit(account, key, 1)
    expect(replay.status).toBe(201)
    expect(replay.headers.get('once-origin')).toBe('r2')
    for (const o of origins) expect((await o.stats()).applied.filter((a) => a.domain === account).length).toBe(1)
    warn.mockRestore()
  })
})

describe('the alarm finishes a pending ordered request every replica acknowledged', () => {
  it("the Worker's commit fails after every replica answered (acks reported): the alarm commits it without a client retry", async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2'])
    const control = failingCommits()
    const deposit = bank(list(origins), { ackQuorum: 1 }, control.ns)
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const res = await deposit(account, newKey(), 5)
    expect(res.status).toBe(201) // answered first; the commit after it fails (3 tries)
    // Both replicas applied it, and their answers reached the object (acknowledge is a separate RPC that passed).
    await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.acked === 1) === true)
    control.heal()
    for (let i = 0; i < 5; i++) {
      await sql(account, `UPDATE records SET lease_until = ${Date.now() - 1}`)
      await sql(account, 'UPDATE log SET retry_at = NULL')
      await runDurableObjectAlarm(stubOf(account))
    }
    const records = await recordsOf(account)
    error.mockRestore()
    warn.mockRestore()
    // Before (a7c798f): in_flight for ever (an ordered record never expires before its commit, so it and its log entry stay).
    expect(records[0]).toMatchObject({ state: 'committed', status: 201 })
  })
})

describe('one sequence, one request at every replica', () => {
  it("a client retry of a pending ordered request sends the log entry's request, not its own headers (replicas fed from the log get the first)", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2', 'r3'])
    const urls = origins.map((o) => o.url)
    const seen: { origin: string; sequence: string | null; memo: string | null; accept: string | null }[] = []
    let down = true
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init)
      const at = urls.findIndex((u) => request.url.startsWith(u))
      if (at < 0 || new URL(request.url).pathname.startsWith('/__origin')) return realFetch(request)
      if (down) throw new Error('connection reset') // the first attempt's sends all fail
      seen.push({ origin: origins[at]!.name, sequence: request.headers.get('once-sequence'), memo: request.headers.get('x-memo'), accept: request.headers.get('accept') })
      return realFetch(request)
    }) as typeof fetch
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const key = newKey()
    const two = bank(list(origins.slice(0, 2)), { ackQuorum: 1, maxAttempts: 1 })
    expect((await two(account, key, 7, { 'x-memo': 'first', accept: 'application/json' })).status).toBe(502)
    down = false
    // The client's retry: same key, same body; a retry brings other end-to-end headers (a trace id, an attempt number, Accept…).
    expect((await two(account, key, 7, { 'x-memo': 'retry', accept: 'text/csv' })).status).toBe(201)
    // A third replica joins and is fed the log from sequence 1.
    const three = bank(list(origins), { ackQuorum: 1 })
    expect((await three(account, newKey(), 1)).status).toBe(201)
    await eventually(
      async () => {
        await sql(account, 'UPDATE replicas SET next_at = NULL')
        await runDurableObjectAlarm(stubOf(account))
        return stateOf(account)
      },
      (s) => s?.replicas.find((r) => r.name === 'r3')?.acked === 2,
      40,
      50,
    )
    warn.mockRestore()
    const firstSlot = seen.filter((s) => s.sequence === '1')
    // Before (a7c798f): r1 and r2 applied sequence 1 with the retry's headers, r3 with the first attempt's (from the log).
    expect(firstSlot.map((s) => `${s.origin}: ${s.memo} ${s.accept}`), JSON.stringify(firstSlot)).toEqual(firstSlot.map((s) => `${s.origin}: ${firstSlot[0]!.memo} ${firstSlot[0]!.accept}`))
  })
})

describe('an answer without Once-Applied from a replica', () => {
  it('a replica URL that only redirects (302, e.g. http→https at its load balancer) is no acknowledgement: the client does not get the 302, the good replica is not suspected', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const [r1] = await startOrigins(['r1'], { latencyMs: 50 })
    const lb = await badOrigin('redirect') // answers at once, before r1
    const deposit = bank([{ name: 'r0', url: lb }, { name: 'r1', url: r1!.url }], { ackQuorum: 1 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const res = await deposit(account, newKey(), 3)
    await eventually(() => r1!.stats(), (s) => s.applied.filter((a) => a.domain === account).length === 1)
    const state = await eventually(() => stateOf(account), (s) => s?.replicas.find((r) => r.name === 'r1')?.acked === 1)
    // The next write: who gets it?
    const next = await deposit(account, newKey(), 4)
    const after = await stateOf(account)
    warn.mockRestore()
    // Before (a7c798f): the client gets 302 (committed, replayed), r0 counts as having applied sequences 1 and 2, and r1 (which
    // did apply them) is marked suspect against the 302; the next write is answered 302 again and applied nowhere.
    expect({
      first: res.status,
      next: next.status,
      r0: after?.replicas.find((r) => r.name === 'r0')?.acked,
      r1: state?.replicas.find((r) => r.name === 'r1')?.state,
    }).toEqual({ first: 201, next: 201, r0: 0, r1: 'active' })
  })
})

describe('a Worker that dies between admit and its sends, then a later write gap-fills its entry', () => {
  it('the dead Worker\'s entry, applied at every replica by gap fill, is committed by the alarm, and the log is pruned past it', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2'])
    const deposit = bank(list(origins), { ackQuorum: 'majority', logRetentionMs: 0 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey(), 1)).status).toBe(201) // sequence 1
    // Sequence 2: a Worker admits it (its request in the log) and dies before sending anything.
    const plan = await runInDurableObject(stubOf(account), (_o, s) => s.storage.sql.exec<{ plan: string }>('SELECT plan FROM domains').one().plan)
    const lookup = `dead-${crypto.randomUUID()}`
    const body = new TextEncoder().encode(JSON.stringify({ amount: 10 }))
    const admitted = await (stubOf(account) as unknown as StableAreaApi).admit({
      lookup,
      fingerprint: lookup,
      leaseMs: 3000,
      ttlMs: 86_400_000,
      waitMs: 0,
      domain: account,
      relay: { key: lookup, plan: JSON.parse(plan), request: { method: 'POST', path: `/accounts/${account}/deposits`, headers: [['content-type', 'application/json']], body } },
    })
    expect(admitted).toMatchObject({ kind: 'new', order: { sequence: 2 } })
    // Sequence 3: the replicas report a gap; this Worker fills sequence 2 from the log, then sends 3 (its acks reported).
    expect((await deposit(account, newKey(), 100)).status).toBe(201)
    for (const o of origins) await eventually(() => o.stats(), (s) => s.applied.filter((a) => a.domain === account).length === 3)
    await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.acked === 3) === true)
    // The dead Worker's lease runs out; the alarm runs a few times.
    for (let i = 0; i < 4; i++) {
      await sql(account, `UPDATE records SET lease_until = ${Date.now() - 1} WHERE lookup = '${lookup}'`)
      await sql(account, 'UPDATE log SET retry_at = NULL')
      await runDurableObjectAlarm(stubOf(account))
    }
    const dead = (await recordsOf(account)).find((r) => r.sequence === 2)
    const state = await stateOf(account)
    warn.mockRestore()
    // Before (a7c798f): sequence 2 stays in_flight for ever (its replicas acknowledged it, so the alarm asks none of them and has
    // no answer to commit); the log is never pruned past it (pruned_through 1), whatever the retention.
    expect({ record: dead?.state, prunedThrough: state?.prunedThrough }).toEqual({ record: 'committed', prunedThrough: 3 })
  })
})

describe('two replicas, the committed reply is not any replica\'s answer', () => {
  it("once()'s maxReplyBytes keeps a reply-lost: one replica diverging marks that one suspect, not both (the domain would stall)", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2'])
    await origins[0]!.faults({ latencyMs: 0 })
    await origins[1]!.faults({ latencyMs: 100, wrongBalance: true })
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false, maxReplyBytes: 8, domain: (c) => c.req.path.split('/')[2]! }))
    app.post('/accounts/*', proxy({ origins: list(origins), strategy: 'replicate', timeoutMs: 1000, deadlineMs: 3000, ackQuorum: 1 }))
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const deposit = () =>
      app.request(`/accounts/${account}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{"amount":1}' }, env)
    const res = await deposit()
    expect(res.headers.get('once-origin')).toBe('r1')
    // Both answers are compared in the commit's or the later acknowledgement's transaction: once both acked, it is done.
    const state = await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.acked === 1) === true && s.replicas.some((r) => r.state === 'suspect'))
    const after = await stateOf(account)
    const next = await deposit()
    warn.mockRestore()
    error.mockRestore()
    // Before (a7c798f): the reference is the digest of the stored reply-lost, which matches neither replica: both are suspect, and
    // every later write of the domain has no replica to go to (502, pending).
    expect({ states: after?.replicas.map((r) => `${r.name} ${r.state}`), next: next.status, first: state?.head }).toEqual({ states: ['r1 active', 'r2 suspect'], next: 201, first: 1 })
  })
})

describe('bad replicate configurations fail at start-up, naming the option', () => {
  const u = (n: number) => `https://r${n}.example.com`
  it.each([
    ['two replica names at one URL (one server counted twice towards the quorum)', { origins: [{ name: 'r1', url: u(1) }, { name: 'r2', url: u(1) }, { name: 'r3', url: u(3) }], ackQuorum: 'majority' }],
    ['two replica names at one URL, spelled with and without a trailing slash', { origins: [{ name: 'r1', url: `${u(1)}/api` }, { name: 'r2', url: `${u(1)}/api/` }], ackQuorum: 'majority' }],
    ['every replica drain: true (no replica gets a write: every write 504, pending for ever)', { origins: [{ name: 'r1', url: u(1), drain: true }, { name: 'r2', url: u(2), drain: true }] }],
  ] as const)('%s', (_why, options) => {
    expect(() => proxy({ strategy: 'replicate', secret: { env: 'S' }, ...(options as unknown as Partial<ProxyOptions>), origins: options.origins as unknown as ProxyOptions['origins'] })).toThrow(/origins/)
  })
})

describe("review s27: an operator's setReplica(…, 'draining')", () => {
  it('stays out of rotation when a deploy changes another proxy() option (here timeoutMs)', async () => {
    const origins = await startOrigins(['r1', 'r2', 'r3'])
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await bank(list(origins), { timeoutMs: 1000 })(account, newKey(), 1)).status).toBe(201)
    await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.acked === 1) === true)
    expect(await (stubOf(account) as unknown as StableAreaApi).setReplica(account, 'r2', 'draining')).toBe(true)
    expect((await bank(list(origins), { timeoutMs: 1000 })(account, newKey(), 1)).status).toBe(201)
    // The next deploy only changes timeoutMs.
    expect((await bank(list(origins), { timeoutMs: 1500 })(account, newKey(), 1)).status).toBe(201)
    expect((await bank(list(origins), { timeoutMs: 1500 })(account, newKey(), 1)).status).toBe(201)
    // Every write is in at the replicas in rotation (and the background is done with them).
    await eventually(() => stateOf(account), (s) => s?.replicas.filter((r) => r.acked === 4).length === 2)
    const r2 = (await origins[1]!.stats()).applied.filter((a) => a.domain === account).map((a) => a.sequence)
    const state = await stateOf(account)
    // Before (a7c798f): the write with the changed plan puts r2 back as 'lagging'; it is fed and is active again.
    expect({ state: state?.replicas.find((r) => r.name === 'r2')?.state, r2 }).toEqual({ state: 'draining', r2: [1] })
  })
})

describe('divergences the alarm finds', () => {
  it('a lagging replica caught up by the alarm that answers differently: suspect with its reason on the status, and logged as found by the alarm (as the docs say)', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2', 'r3'])
    await origins[2]!.faults({ down: true, wrongBalance: true })
    const events: DivergenceEvent[] = []
    const deposit = bank(list(origins), { ackQuorum: 'majority', maxAttempts: 1, onDivergence: (e) => void events.push(e) })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey(), 5)).status).toBe(201)
    await eventually(() => stateOf(account), (s) => s?.replicas.find((r) => r.name === 'r3')?.state === 'lagging')
    await origins[2]!.faults({ down: false })
    const state = await eventually(
      async () => {
        await sql(account, 'UPDATE replicas SET next_at = NULL')
        await runDurableObjectAlarm(stubOf(account))
        return stateOf(account)
      },
      (s) => s?.replicas.find((r) => r.name === 'r3')?.state === 'suspect',
      40,
      50,
    )
    const r3 = state?.replicas.find((r) => r.name === 'r3')
    const logged = warn.mock.calls.map((args) => String(args[0])).filter((m) => /replica r3 diverged at .*#1: .*\(found by the alarm\)/.test(m))
    warn.mockRestore()
    expect(r3?.reason).toMatch(/^answered sequence 1 with /)
    expect(logged).toHaveLength(1)
    // The Worker's onDivergence hears only what the Worker compares (docs/replication.md, "Who hears of a divergence").
    expect(events).toEqual([])
  })
})

describe('an onDivergence that throws', () => {
  it('does not swallow the other divergences of the same write', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2', 'r3', 'r4', 'r5'])
    await origins[0]!.faults({ wrongBalance: true })
    await origins[1]!.faults({ wrongBalance: true })
    const seen: string[] = []
    const deposit = bank(list(origins), {
      ackQuorum: 'all',
      onDivergence: (e) => {
        seen.push(e.origin)
        throw new Error('alerting is down')
      },
    })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey(), 1)).status).toBe(201)
    await eventually(() => stateOf(account), (s) => s?.replicas.filter((r) => r.state === 'suspect').length === 2)
    await eventually(async () => seen.length, (n) => n >= 2, 80)
    error.mockRestore()
    warn.mockRestore()
    // Before (a7c798f): the first call throws, the loop ends there, and the second suspect is never reported.
    expect(seen.sort()).toEqual(['r1', 'r2'])
  })
})
