import { env } from 'cloudflare:workers'
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import { once, proxy, type ProxyOptions } from '../../src/index.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { eventually, type FarmOrigin, startOrigins } from '../farm.js'
import { newKey, problemOf } from '../helpers.js'
import { realFetch, restoreFetch, wrapFetch } from './domains.js'

const list = (origins: FarmOrigin[]) => origins.map(({ name, url }) => ({ name, url }))
const stubOf = (domain: string) => env.ONCE.get(env.ONCE.idFromName(`once/domain/${domain}`))
const stateOf = async (domain: string) => (await (stubOf(domain) as unknown as StableAreaApi).domains()).find((d) => d.domain === domain)

function bank(origins: { name: string; url: string }[], options: Partial<ProxyOptions> = {}) {
  const app = new Hono()
  app.use('/accounts/*', once({ leaseMs: 3000, replayCache: false, domain: (c) => c.req.path.split('/')[2]! }))
  app.post('/accounts/*', proxy({ origins, strategy: 'replicate', timeoutMs: 1000, deadlineMs: 4000, ...options }))
  return (account: string, key: string, amount = 1) =>
    app.request(`/accounts/${account}/deposits`, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: JSON.stringify({ amount }) }, env)
}

/** Moves the object's clock-bound columns (columns an older schema lacks are skipped). */
const age = (stub: DurableObjectStub, statement: string) =>
  runInDurableObject(stub, (_o, s) => {
    try {
      s.storage.sql.exec(statement)
    } catch {}
  })

afterEach(restoreFetch)

describe('replicate: bounded attempts (issue 15.3)', () => {
  it('a replica answering 503 gets at most maxAttempts sends from the Worker, then the alarm backs off (2 s first)', async () => {
    const origins = await startOrigins(['r1', 'r2'])
    await origins[1]!.faults({ failNext: 1_000_000 })
    const deposit = bank(list(origins), { maxAttempts: 3 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey())).status).toBe(201)
    // The Worker's background sends end; r2 is handed to the alarm.
    await eventually(() => stateOf(account), (s) => s?.replicas.find((r) => r.name === 'r2')?.state === 'lagging', 200, 25)
    await scheduler.wait(300)
    expect((await origins[1]!.stats()).requests).toBeLessThanOrEqual(3)
    await runDurableObjectAlarm(stubOf(account))
    await runDurableObjectAlarm(stubOf(account)) // within the 2 s backoff: nothing more
    expect((await origins[1]!.stats()).requests).toBeLessThanOrEqual(4)
  })

  it('every replica failing: a short problem detail naming each origin once with its last outcome', async () => {
    const origins = await startOrigins(['r1', 'r2', 'r3'])
    for (const o of origins) await o.faults({ failNext: 1_000_000 })
    const deposit = bank(list(origins), { maxAttempts: 3, deadlineMs: 2000 })
    const res = await deposit(`acct-${crypto.randomUUID().slice(0, 8)}`, newKey())
    expect(res.status).toBe(502)
    const { detail } = await problemOf(res)
    expect(String(detail).length).toBeLessThan(200)
    for (const name of ['r1', 'r2', 'r3']) expect(String(detail).split(`${name}:`).length).toBe(2)
    for (const o of origins) expect((await o.stats()).requests).toBeLessThanOrEqual(3)
  })
})

describe('replicate: at most 6 sends at once (issue 15.14)', () => {
  it('8 replicas behind a fetch that holds 6 connections: never more than 6 sent at once, so none waits in the runtime with its timeout running', async () => {
    const origins = await startOrigins(Array.from({ length: 8 }, (_, i) => `r${i + 1}`), { latencyMs: 300 })
    let open = 0
    let most = 0
    let queued = 0
    const waiting: (() => void)[] = []
    // The runtime queues a 7th connection until one of the 6 frees, the attempt's timer running meanwhile.
    wrapFetch(list(origins).map((o) => o.url), async (_request, send) => {
      if (open >= 6) {
        queued++
        await new Promise<void>((r) => waiting.push(r))
      }
      open++
      most = Math.max(most, open)
      try {
        return await send()
      } finally {
        open--
        waiting.shift()?.()
      }
    })
    const deposit = bank(list(origins), { ackQuorum: 'all', timeoutMs: 2500, deadlineMs: 6000, maxAttempts: 1 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const res = await deposit(account, newKey())
    globalThis.fetch = realFetch
    expect(res.status).toBe(201)
    expect(queued).toBe(0) // the edge held the 7th and 8th itself, before their timeoutMs started
    expect(most).toBe(6)
    // One send per replica, every one answered.
    const attempts = (res.headers.get('server-timing') ?? '').split(', ')
    expect(attempts).toHaveLength(8)
    expect(attempts.every((a) => a.includes(' 201"'))).toBe(true)
    // Recorded with the commit, which follows the answer.
    await eventually(() => stateOf(account), (state) => state?.replicas.length === 8 && state.replicas.every((r) => r.state === 'active' && r.acked === 1))
  })
})

describe('replicate: the majority answers (issue 15.19)', () => {
  it("ackQuorum 'majority': a wrong replica answering first is not the client's answer, and is the suspect one", async () => {
    const origins = await startOrigins(['r1', 'r2', 'r3'])
    await origins[0]!.faults({ wrongBalance: true })
    await origins[1]!.faults({ latencyMs: 150 })
    await origins[2]!.faults({ latencyMs: 150 })
    const deposit = bank(list(origins), { ackQuorum: 'majority' })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const key = newKey()
    const res = await deposit(account, key, 1)
    expect(res.status).toBe(201)
    expect(await res.json()).toMatchObject({ balance: 1 })
    expect(res.headers.get('once-origin')).not.toBe('r1')
    expect(await (await deposit(account, key, 1)).json()).toMatchObject({ balance: 1 }) // duplicates replay the majority's
    const state = await eventually(() => stateOf(account), (s) => s?.replicas.find((r) => r.name === 'r1')?.state === 'suspect')
    expect(state?.replicas.filter((r) => r.state === 'suspect').map((r) => r.name)).toEqual(['r1'])
  })
})

describe('replicate: a replica wrongly suspected is cleared (issue 15.19)', () => {
  it('ackQuorum 1, the wrong replica first: the right one suspected against it is cleared once a third answer makes a majority', async () => {
    const origins = await startOrigins(['r1', 'r2', 'r3'])
    await origins[0]!.faults({ wrongBalance: true })
    await origins[1]!.faults({ latencyMs: 100 })
    await origins[2]!.faults({ down: true })
    const deposit = bank(list(origins), { ackQuorum: 1, maxAttempts: 1 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey(), 1)).status).toBe(201) // with ackQuorum 1 the first answer stands
    // Two answers, compared against the committed (wrong) one: r2 is suspected.
    await eventually(() => stateOf(account), (s) => s?.replicas.find((r) => r.name === 'r2')?.state === 'suspect')
    await origins[2]!.faults({ down: false })
    const stub = stubOf(account)
    const state = await eventually(
      async () => {
        await age(stub, "UPDATE replicas SET next_at = NULL WHERE name = 'r3'")
        await runDurableObjectAlarm(stub)
        return stateOf(account)
      },
      (s) => s?.replicas.find((r) => r.name === 'r2')?.state === 'active',
      40,
      50,
    )
    expect(state?.replicas.map((r) => [r.name, r.state])).toEqual([
      ['r1', 'suspect'],
      ['r2', 'active'],
      ['r3', 'active'],
    ])
  })
})

describe('replicate: poison (issue 15.5)', () => {
  it('a 70 s outage of every replica (503, temporary) never makes a request poison: once they are back it is applied', async () => {
    const origins = await startOrigins(['r1', 'r2'])
    for (const o of origins) await o.faults({ failNext: 1_000_000 })
    const deposit = bank(list(origins), { deadlineMs: 500, timeoutMs: 300 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const key = newKey()
    expect((await deposit(account, key, 4)).status).toBe(502)
    const stub = stubOf(account)
    // Older than any poison window: only what the replicas answered may decide.
    await runInDurableObject(stub, (_o, s) => s.storage.sql.exec('UPDATE log SET created_at = created_at - 70000'))
    for (let i = 0; i < 7; i++) {
      await age(stub, 'UPDATE log SET retry_at = NULL, refused_since = refused_since - 700000')
      await runDurableObjectAlarm(stub)
    }
    expect(await problemOf(await deposit(account, key, 4))).toMatchObject({ retryable: true })
    for (const o of origins) await o.faults({ failNext: 0 })
    const done = await eventually(
      async () => {
        await age(stub, 'UPDATE log SET retry_at = NULL')
        await runDurableObjectAlarm(stub)
        return deposit(account, key, 4)
      },
      (r) => r.status === 201,
      60,
      100,
    )
    expect(await done.json()).toMatchObject({ balance: 4 })
  }, 30_000)

  it('handler-failed (Once-Applied: ?0) at every replica over poisonAfterMs: committed as request-abandoned, the slot a no-op everywhere', async () => {
    const origins = await startOrigins(['r1', 'r2'])
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    // The receiver's answer when the app throws (DESIGN §6), for sequence 1 of this domain.
    wrapFetch(list(origins).map((o) => o.url), async (request, send) => {
      if (request.headers.get('once-sequence') !== '1' || request.headers.get('once-noop') === '?1') return send()
      const body = JSON.stringify({ type: 'https://hono-once.dev/problems/handler-failed', title: 'The app failed', status: 500, retryable: false })
      return new Response(body, { status: 500, headers: { 'content-type': 'application/problem+json', 'once-applied': '?0' } })
    })
    const deposit = bank(list(origins), { deadlineMs: 500, timeoutMs: 300, poisonAfterMs: 60_000 })
    const key = newKey()
    expect((await deposit(account, key, 9)).status).toBe(502)
    const stub = stubOf(account)
    await runDurableObjectAlarm(stub) // first round: every replica refused for good
    expect(await problemOf(await deposit(account, key, 9))).toMatchObject({ retryable: true }) // not yet: the window is 60 s
    await age(stub, 'UPDATE log SET retry_at = NULL, refused_since = refused_since - 61000')
    await runDurableObjectAlarm(stub)
    expect(await problemOf(await deposit(account, key, 9))).toMatchObject({ status: 502, type: expect.stringContaining('request-abandoned'), retryable: false })
    globalThis.fetch = realFetch
    expect((await bank(list(origins))(account, newKey(), 3)).status).toBe(201)
    for (const o of origins) {
      const h = await eventually(async () => (await o.stats()).applied.filter((a) => a.domain === account), (h) => h.length === 2)
      expect(h.map((a) => [a.sequence, a.noop])).toEqual([
        [1, true],
        [2, false],
      ])
    }
  }, 30_000)
})

describe('replicate: a dead replica no longer holds the log (issue 15.12)', () => {
  it('failed feeds are no progress: past logRetentionMs the replica is stale and the log is pruned', async () => {
    const origins = await startOrigins(['r1', 'r2'])
    const deposit = bank(list(origins), { logRetentionMs: 0 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    await origins[1]!.faults({ down: true })
    for (let i = 0; i < 3; i++) expect((await deposit(account, newKey())).status).toBe(201)
    await eventually(() => stateOf(account), (s) => s?.replicas.find((r) => r.name === 'r2')?.state === 'lagging')
    const stub = stubOf(account)
    // Its last progress is long past; a feed is due and fails.
    await runInDurableObject(stub, (_o, s) => s.storage.sql.exec("UPDATE replicas SET updated_at = updated_at - 120000, next_at = NULL WHERE name = 'r2'"))
    await runDurableObjectAlarm(stub)
    await runDurableObjectAlarm(stub)
    const state = await stateOf(account)
    expect(state?.replicas.find((r) => r.name === 'r2')).toMatchObject({ state: 'stale', reason: expect.stringContaining('snapshot') })
    expect(state?.prunedThrough).toBe(3)
  })
})
