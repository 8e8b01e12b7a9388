import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import gateway from '../../src/gateway.js'
import type { GatewayConfig } from '../../src/gateway/config.js'
import type { GatewayStatus } from '../../src/gateway/status.js'
import type { StableArea } from '../../src/durable/stable-area.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { REPORT_INTERVAL_MS } from '../../src/durable/counters.js'
import { startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'

/** Issue 15 items 11 and 17: the status page's token, its cost, and whether its figures tell the truth. */

const TOKEN = 'status-token-for-tests'
const bearer = { authorization: `Bearer ${TOKEN}`, accept: 'application/json' }

/** The StableArea namespace, counting what the gateway asks of it: objects reached and RPC methods called. */
function countingNamespace(ns: DurableObjectNamespace<StableArea>) {
  const seen = { gets: 0, calls: [] as string[] }
  const wrapped = {
    idFromName: (name: string) => ns.idFromName(name),
    idFromString: (id: string) => ns.idFromString(id),
    newUniqueId: () => ns.newUniqueId(),
    get(id: DurableObjectId, options?: DurableObjectNamespaceGetDurableObjectOptions) {
      seen.gets++
      const stub = ns.get(id, options) as unknown as Record<string, unknown>
      return new Proxy(stub, {
        get(target, prop) {
          const value = Reflect.get(target, prop)
          if (typeof prop !== 'string' || typeof value !== 'function') return value
          return (...args: unknown[]) => {
            seen.calls.push(prop)
            return Reflect.apply(value as (...a: unknown[]) => unknown, target, args)
          }
        },
      })
    },
  }
  return { ns: wrapped as unknown as DurableObjectNamespace<StableArea>, seen }
}

function harness(config: GatewayConfig, ns: DurableObjectNamespace<StableArea> = env.ONCE) {
  const pending: Promise<unknown>[] = []
  const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p), passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext
  const call = (path: string, init: RequestInit = {}) =>
    gateway.fetch!(new Request(`http://gateway.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>, { ONCE: ns, ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET, ONCE_CONFIG: JSON.stringify(config), ONCE_STATUS_TOKEN: TOKEN }, ctx)
  const status = async () => {
    const res = await call('/__once/status', { headers: bearer })
    expect(res.status).toBe(200)
    return (await res.json()) as GatewayStatus
  }
  return { call, status, settle: () => Promise.all(pending.splice(0)) }
}

const writeConfig = (origins: { name: string; url: string }[], extra: Partial<GatewayConfig> = {}): GatewayConfig => ({
  origins: origins.map(({ name, url }) => ({ name, url })),
  routes: [{ path: '/accounts/:id/*', methods: ['POST'], strategy: 'replicate', domain: 'param:id', timeoutMs: 1000, deadlineMs: 3000 }],
  keys: { leaseMs: 3000 },
  ...extra,
})

const deposit = (call: ReturnType<typeof harness>['call'], account: string, key: string, amount = 100) =>
  call(`/accounts/${account}/deposits`, { method: 'POST', headers: { authorization: 'Bearer caller-1', 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: JSON.stringify({ amount }) })

/** Makes the object's report due now and runs its alarm (set far ahead first, so it does not fire by itself meanwhile). */
async function reportNow(stub: DurableObjectStub<StableArea>) {
  await runInDurableObject(stub, async (_i, state) => {
    state.storage.sql.exec(`INSERT INTO counters (name, total) VALUES ('report_due', 0) ON CONFLICT (name) DO UPDATE SET total = 0`)
    await state.storage.setAlarm(Date.now() + 60_000)
  })
  expect(await runDurableObjectAlarm(stub)).toBe(true)
}

const domainObject = (account: string) => env.ONCE.get(env.ONCE.idFromName(`once/domain/${account}`))

describe('the status page token (item 11)', () => {
  it('is accepted only as Authorization: Bearer: a ?token= query and a cookie are refused, and nothing sets a cookie', async () => {
    const [eu] = await startOrigins(['eu'])
    const { call } = harness(writeConfig([eu!]))
    const query = await call(`/__once/status?token=${TOKEN}`, { headers: { accept: 'application/json' }, redirect: 'manual' })
    expect(query.status).toBe(401)
    expect(query.headers.get('set-cookie')).toBeNull()
    expect(((await query.json()) as { detail: string }).detail).toMatch(/query string is not accepted/)
    const cookie = await call('/__once/status', { headers: { accept: 'application/json', cookie: `once_status=${TOKEN}` } })
    expect(cookie.status).toBe(401)
    await cookie.body?.cancel()
    const ok = await call('/__once/status', { headers: bearer })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('set-cookie')).toBeNull()
    await ok.body?.cancel()
  })

  it('the page holds no figures: it asks for the token once, keeps it in sessionStorage, sends it as a bearer, and polls no faster than the figures change', async () => {
    const [eu] = await startOrigins(['eu'])
    const { call, status } = harness(writeConfig([eu!]))
    const res = await call('/__once/status', { headers: { accept: 'text/html' } })
    expect(res.status).toBe(200)
    const html = await res.text()
    expect(html).toContain('<table id="origins">')
    expect(html).not.toContain(eu!.url) // no figures without the token
    expect(html).toContain('sessionStorage')
    expect(html).toMatch(/authorization:'Bearer '\+token/)
    expect(html).toContain('#token=') // a fragment hand-over, which never reaches the server
    expect(html).not.toMatch(/setInterval|[?&]token=/)
    const s = await status()
    expect(s.refreshMs).toBeGreaterThanOrEqual(5000)
  })
})

describe('the status figures are read from one place (item 11)', () => {
  it('one status read is one RPC to one object, with 4,096 shards and several domains', async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    const { ns, seen } = countingNamespace(env.ONCE)
    const { call, status } = harness(writeConfig([eu!, us!], { shards: 4096 }), ns)
    for (let i = 0; i < 3; i++) expect((await deposit(call, `acct-${crypto.randomUUID().slice(0, 8)}`, newKey())).status).toBe(201)
    seen.gets = 0
    seen.calls.length = 0
    await status()
    expect(seen.gets).toBe(1)
    expect(seen.calls).toEqual(['readStatus'])
  })

  it('when the status object does not answer, the read still answers with the live origins and says what is missing', async () => {
    const [eu] = await startOrigins(['eu'])
    const failing = {
      idFromName: (name: string) => env.ONCE.idFromName(name),
      get: () => ({ readStatus: () => Promise.reject(new Error('overloaded')) }),
    } as unknown as DurableObjectNamespace<StableArea>
    const { status } = harness(writeConfig([eu!]), failing)
    const s = await status()
    expect(s.unavailable).toMatch(/status object did not answer \(overloaded\)/)
    expect(s.origins.map((o) => [o.name, o.state])).toEqual([['eu', 'up']])
    expect(s.domains).toEqual([])
  })

  it('the admit path stays at one round trip: a write makes one admit and one commit, and no report', async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    const { ns, seen } = countingNamespace(env.ONCE)
    const { call, settle } = harness(writeConfig([eu!, us!]), ns)
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(call, account, newKey())).status).toBe(201)
    await settle()
    seen.calls.length = 0
    expect((await deposit(call, account, newKey())).status).toBe(201)
    await settle()
    expect(seen.calls.filter((m) => m !== 'acknowledge')).toEqual(['admit', 'commit'])
  })
})

describe('the status figures tell the truth (item 17)', () => {
  it("an object's counts survive its restart", async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    const { call, settle } = harness(writeConfig([eu!, us!]))
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const key = newKey()
    expect((await deposit(call, account, key)).status).toBe(201)
    await settle()
    const stub = domainObject(account)
    expect(await stub.stats()).toMatchObject({ admits: 1 })
    await runInDurableObject(stub, (_instance, state) => state.abort('restart for the test')).catch(() => {})
    expect(await domainObject(account).stats()).toMatchObject({ admits: 1, replays: 0 })
  })

  it("a replay, a 409 and a 422 answered by an object are written with its next write (never on their own answer's path) and survive its restart", async () => {
    const raw = env.ONCE.get(env.ONCE.idFromName(`counters-test/${crypto.randomUUID()}`))
    const stub = raw as unknown as StableAreaApi // typed by its RPC surface: the generated stub type is too deep for the checker
    const admit = (lookup: string, fingerprint: string, waitMs = 0) => stub.admit({ lookup, fingerprint, leaseMs: 10_000, ttlMs: 60_000, waitMs })
    const first = await admit('k', 'f1')
    expect(first.kind).toBe('new')
    expect((await admit('k', 'f1')).kind).toBe('in_flight')
    expect((await admit('k', 'f2')).kind).toBe('mismatch')
    if (first.kind !== 'new') throw new Error('unreachable')
    await stub.commit({ lookup: 'k', token: first.token, ttlMs: 60_000, reply: { status: 201, headers: [], body: new Uint8Array() } })
    expect((await admit('k', 'f1')).kind).toBe('replay')
    const stored = () =>
      runInDurableObject(raw, (_i, state) => Object.fromEntries(state.storage.sql.exec<{ name: string; total: number }>('SELECT name, total FROM counters').toArray().map((r) => [r.name, r.total])))
    // Answers that write nothing are not written on their own path (no write of theirs for the output gate to wait on).
    expect(await stored()).toMatchObject({ admits: 1 })
    expect((await stored()).replays).toBeUndefined()
    // The next admit writes them, in its own write's step.
    expect((await admit('k2', 'f1')).kind).toBe('new')
    expect(await stored()).toMatchObject({ admits: 2, replays: 1, conflicts: 1, mismatches: 1 })
    await runInDurableObject(raw, (_instance, state) => state.abort('restart for the test')).catch(() => {})
    const again = env.ONCE.get(raw.id) as unknown as StableAreaApi
    expect(await again.stats()).toMatchObject({ admits: 2, replays: 1, conflicts: 1, mismatches: 1 })
  })

  it('counts every admit once, whichever statement made it: a new key (its insert counts it), a retry taking a released key over, a key whose record expired; an insert rolled back counts nothing', async () => {
    const raw = env.ONCE.get(env.ONCE.idFromName(`counters-test/${crypto.randomUUID()}`))
    const stub = raw as unknown as StableAreaApi
    const admit = (lookup: string, ttlMs = 60_000) => stub.admit({ lookup, fingerprint: 'f1', leaseMs: 10_000, ttlMs, waitMs: 0 })
    const admits = () => runInDurableObject(raw, (_i, state) => state.storage.sql.exec<{ total: number }>(`SELECT total FROM counters WHERE name = 'admits'`).toArray()[0]?.total ?? 0)
    const first = await admit('a')
    if (first.kind !== 'new') throw new Error('unreachable')
    expect(await admits()).toBe(1)
    // A failed attempt gives the key back; the retry takes the record over (an update, not an insert).
    expect(await stub.release('a', first.token)).toBe(true)
    expect(await admit('a')).toMatchObject({ kind: 'new', attempt: 2, requestId: first.requestId })
    expect(await admits()).toBe(2)
    // A record that expired (and is still there: no alarm ran) is taken over by a new request with its key (an update).
    const old = await admit('old')
    if (old.kind !== 'new') throw new Error('unreachable')
    await stub.commit({ lookup: 'old', token: old.token, ttlMs: 60_000, reply: { status: 201, headers: [], body: new Uint8Array() } })
    await runInDurableObject(raw, (_i, state) => state.storage.sql.exec(`UPDATE records SET expires_at = ? WHERE lookup = 'old'`, Date.now() - 1))
    const renewed = await admit('old')
    expect(renewed).toMatchObject({ kind: 'new', attempt: 1 })
    expect(renewed.kind === 'new' && renewed.requestId).not.toBe(old.requestId)
    expect(await admits()).toBe(4)
    // The trigger's count is part of the insert's transaction: an insert rolled back (as an ordered admit that fails
    // after its insert is, ordered-rollback.test.ts) takes its count back with it.
    await runInDurableObject(raw, (_i, state) => {
      expect(() =>
        state.storage.transactionSync(() => {
          state.storage.sql.exec(`INSERT INTO records (lookup, fingerprint, request_id, state, attempt, expires_at, created_at) VALUES ('x', 'f', 'r', 'in_flight', 1, 1, 1)`)
          throw new Error('the admit failed after its insert')
        }),
      ).toThrow('the admit failed')
    })
    expect(await admits()).toBe(4)
    expect(await stub.stats()).toMatchObject({ admits: 4 })
  })

  it('an object whose storage is at schema step 8 counts its new keys after the upgrade, once each', async () => {
    const raw = env.ONCE.get(env.ONCE.idFromName(`counters-test/${crypto.randomUUID()}`))
    const stub = raw as unknown as StableAreaApi
    expect((await stub.admit({ lookup: 'a', fingerprint: 'f1', leaseMs: 10_000, ttlMs: 60_000, waitMs: 0 })).kind).toBe('new')
    // As an object of the release before left it: no trigger, at version 8.
    await runInDurableObject(raw, (_i, state) => {
      state.storage.sql.exec('DROP TRIGGER records_count_admits')
      state.storage.sql.exec(`UPDATE meta SET v = 8 WHERE k = 'schema_version'`)
      state.abort('restart for the test')
    }).catch(() => {})
    const again = env.ONCE.get(raw.id) as unknown as StableAreaApi
    expect((await again.admit({ lookup: 'b', fingerprint: 'f1', leaseMs: 10_000, ttlMs: 60_000, waitMs: 0 })).kind).toBe('new')
    expect(await again.stats()).toMatchObject({ admits: 2 })
  })

  it('an object that only replays writes its counts by its report alarm, due within one and a half intervals', async () => {
    const raw = env.ONCE.get(env.ONCE.idFromName(`counters-test/${crypto.randomUUID()}`))
    const stub = raw as unknown as StableAreaApi
    const first = await stub.admit({ lookup: 'k', fingerprint: 'f1', leaseMs: 10_000, ttlMs: 60_000, waitMs: 0 })
    if (first.kind !== 'new') throw new Error('unreachable')
    await stub.commit({ lookup: 'k', token: first.token, ttlMs: 60_000, reply: { status: 201, headers: [], body: new Uint8Array() } })
    await reportNow(raw) // the report the admit made due: nothing left unsaved, nothing due
    const before = Date.now()
    for (let i = 0; i < 3; i++) expect((await stub.admit({ lookup: 'k', fingerprint: 'f1', leaseMs: 10_000, ttlMs: 60_000, waitMs: 0 })).kind).toBe('replay')
    const due = await runInDurableObject(raw, (_i, state) => state.storage.sql.exec<{ total: number }>(`SELECT total FROM counters WHERE name = 'report_due'`).toArray()[0]?.total)
    expect(due).toBeGreaterThanOrEqual(before + REPORT_INTERVAL_MS)
    expect(due).toBeLessThanOrEqual(Date.now() + REPORT_INTERVAL_MS * 1.5)
    await reportNow(raw)
    await runInDurableObject(raw, (_instance, state) => state.abort('restart for the test')).catch(() => {})
    expect(await (env.ONCE.get(raw.id) as unknown as StableAreaApi).stats()).toMatchObject({ admits: 1, replays: 3 })
  })

  it('objects report to the status object by their alarm; the totals and domains there survive its restart, and a repeated report counts once', async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    const { call, status, settle } = harness(writeConfig([eu!, us!]))
    const before = (await status()).counts
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(call, account, newKey())).status).toBe(201)
    expect((await deposit(call, account, newKey())).status).toBe(201)
    await settle()
    const stub = domainObject(account)
    // The report is due up to 1.5 intervals after the first count: run the alarm now, as if that time had come.
    await reportNow(stub)
    const after = await status()
    expect(after.counts.admits - before.admits).toBe(2)
    expect(after.domains.find((d) => d.domain === account)?.head).toBe(2)
    expect(after.domainCount).toBeGreaterThanOrEqual(1)
    // The same totals again (a report whose answer was lost, sent once more) add nothing.
    await reportNow(stub)
    expect((await status()).counts.admits - before.admits).toBe(2)
    const statusStub = env.ONCE.get(env.ONCE.idFromName('once/status'))
    await runInDurableObject(statusStub, (_i, state) => state.abort('restart for the test')).catch(() => {})
    expect((await status()).counts.admits - before.admits).toBe(2)
  })

  it('a replay and a 422 answered from the isolate cache are counted, and reach the status object without a round trip of their own', async () => {
    const [eu, us] = await startOrigins(['eu', 'us'])
    const { ns, seen } = countingNamespace(env.ONCE)
    const { call, status, settle } = harness(writeConfig([eu!, us!]), ns)
    const before = (await status()).counts
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const key = newKey()
    expect((await deposit(call, account, key, 100)).status).toBe(201)
    await settle()
    seen.calls.length = 0
    const replay = await deposit(call, account, key, 100)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    const reused = await deposit(call, account, key, 999)
    expect(reused.status).toBe(422)
    expect(seen.calls.filter((m) => m !== 'reportStatus')).toEqual([]) // both answered by the isolate alone
    const after = await status()
    expect(after.counts.replays - before.replays).toBe(1)
    expect(after.counts.mismatches - before.mismatches).toBe(1)
  })

  it("shows the breaker as the next request meets it: after the cooldown, probing (not down / open)", async () => {
    const [eu] = await startOrigins(['eu'])
    await eu!.stop()
    const config: GatewayConfig = { origins: [{ name: 'eu', url: eu!.url }], routes: [{ path: '/accounts/*', methods: ['GET'], strategy: 'hedge', timeoutMs: 500, breaker: { failures: 1, cooldownMs: 400 } }] }
    const { call, status } = harness(config)
    const res = await call('/accounts/x')
    expect(res.status).toBeGreaterThanOrEqual(500)
    await res.body?.cancel()
    const down = await status()
    expect(down.origins[0]).toMatchObject({ name: 'eu', state: 'down', breaker: 'open' })
    // No traffic: only the clock moves. Bounded polling, well past the cooldown.
    let shown = down.origins[0]
    for (let i = 0; i < 40 && shown?.state !== 'probing'; i++) {
      await scheduler.wait(50)
      shown = (await status()).origins[0]
    }
    expect(shown).toMatchObject({ state: 'probing', breaker: 'half-open' })
  })
})

describe('a replica added to the gateway\'s origins (issue 15 item 20)', () => {
  it('joins the quiet domains too, and the status read shows its progress: not told, joining, up to date', async () => {
    const origins = await startOrigins(['ga1', 'ga2', 'ga3'])
    // Unsigned: the test's objects have no ONCE_SIGNING_SECRET, and the alarm never sends unsigned what should be signed.
    const before = harness(writeConfig(origins.slice(0, 2), { signing: 'off' }))
    const accounts = Array.from({ length: 3 }, () => `acct-${crypto.randomUUID().slice(0, 8)}`)
    for (const a of accounts) expect((await deposit(before.call, a, newKey())).status).toBe(201)
    await before.settle()
    for (const a of accounts) await reportNow(domainObject(a))
    // One account reported before the directory existed (an upgrade): the figures know it, the directory does not.
    const statusObject = env.ONCE.get(env.ONCE.idFromName('once/status'))
    await runInDurableObject(statusObject, (_i, state) => void state.storage.sql.exec('DELETE FROM directory WHERE domain = ?', accounts[2]!))
    // Redeployed with ga3; one write to one account.
    const after = harness(writeConfig(origins, { signing: 'off' }))
    expect((await deposit(after.call, accounts[0]!, newKey())).status).toBe(201)
    await after.settle()
    await reportNow(domainObject(accounts[0]!))
    await runInDurableObject(statusObject, (_i, state) => state.storage.setAlarm(Date.now() + 60_000))
    expect((await after.status()).joins.find((j) => j.name === 'ga3')).toMatchObject({ domains: 3, waiting: 2 })
    expect(await runDurableObjectAlarm(statusObject)).toBe(true) // tells the two quiet accounts
    const told = (await after.status()).joins.find((j) => j.name === 'ga3')
    expect(told).toMatchObject({ domains: 3, waiting: 0 })
    expect(told!.joining).toBeGreaterThanOrEqual(1)
    // The accounts' own alarms feed it their logs (bounded polling over alarm runs), then report.
    for (const a of accounts) {
      for (let i = 0; i < 20; i++) {
        const d = (await domainObject(a).domains()).find((x) => x.domain === a)
        if (d?.replicas.some((r) => r.name === 'ga3' && r.state === 'active')) break
        await runInDurableObject(domainObject(a), (_i, state) => state.storage.setAlarm(Date.now() + 60_000))
        await runDurableObjectAlarm(domainObject(a))
      }
      await reportNow(domainObject(a))
    }
    const s = await after.status()
    expect(s.joins.find((j) => j.name === 'ga3')).toEqual({ name: 'ga3', domains: 3, upToDate: 3, joining: 0, resync: 0, waiting: 0 })
    expect(s.origins.find((o) => o.name === 'ga3')?.state).toBe('up')
    for (const a of accounts) expect((await origins[2]!.stats()).balances[a]).toBe(a === accounts[0] ? 200 : 100)
  })
})
