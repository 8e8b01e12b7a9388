import { env } from 'cloudflare:workers'
import { abortAllDurableObjects, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { migrate, SCHEMA_VERSION } from '../../src/durable/schema.js'
import type { StableArea } from '../../src/durable/stable-area.js'
import type { StableAreaApi } from '../../src/durable/types.js'
import { lookupKey } from '../../src/middleware/identity.js'
import { bank, crashedWorker, expireLeases, expireRecords, newKey, recordOf, stubFor, until } from '../helpers.js'

const api = async (key: string) => (await stubFor(key)) as unknown as StableAreaApi

describe('a Worker that dies between admit and commit', () => {
  it('holds the key while its lease lasts, then exactly one retry runs the handler', async () => {
    const { post, effects } = bank({ inFlight: 'reject', replayCache: false })
    const key = newKey()
    const crashed = await crashedWorker(key)
    expect(crashed.kind).toBe('new')
    expect((await post(key)).status).toBe(409)
    expect(effects.get(key)).toBeUndefined()

    await expireLeases(key) // leaseMs goes by: the dead Worker never renewed
    const [a, b] = await Promise.all([post(key), post(key)])
    expect([a.status, b.status].sort()).toEqual([201, 409])
    expect(effects.get(key)).toBe(1)

    const record = await recordOf(key)
    expect(record).toMatchObject({ state: 'committed', attempt: 2 })
    // the retry kept the logical request's id
    expect(record?.request_id).toBe(crashed.kind === 'new' ? crashed.requestId : '')
    expect((await post(key)).headers.get('idempotent-replayed')).toBe('true')
    expect(effects.get(key)).toBe(1)
  })

  it('lets a waiting retry take over the moment the lease runs out (real time, no clock tricks)', async () => {
    const { post, effects } = bank({ replayCache: false })
    const key = newKey()
    await crashedWorker(key, { amount: 100 }, 150)
    const started = Date.now()
    const res = await post(key) // blocks in the object until the dead lease ends, then runs
    expect(res.status).toBe(201)
    expect(res.headers.get('idempotent-replayed')).toBeNull()
    expect(Date.now() - started).toBeGreaterThanOrEqual(100)
    expect(effects.get(key)).toBe(1)
  })

  it('the alarm never takes a lease that ran out: its late holder still commits when nobody else admitted', async () => {
    const key = newKey()
    const admitted = await crashedWorker(key)
    if (admitted.kind !== 'new') throw new Error('expected a new admission')
    await expireLeases(key)
    expect(await runDurableObjectAlarm(await stubFor(key))).toBe(true)
    expect(await recordOf(key)).toMatchObject({ state: 'in_flight', token: admitted.token })
    const stub = (await stubFor(key)) as unknown as StableAreaApi
    const reply = { status: 201, headers: [] as [string, string][], body: new TextEncoder().encode('late but live') }
    expect(await stub.commit({ lookup: lookupKey('', key), token: admitted.token, reply, ttlMs: 60_000 })).toMatchObject({ ok: true })
  })

  it('a live handler that outlasts leaseMs renews its lease and is not taken over', async () => {
    const { post, hold, effects } = bank({ leaseMs: 1000, inFlight: 'reject' })
    const key = newKey()
    const open = hold(key)
    const first = post(key)
    const admitted = await until(key, (r) => r?.state === 'in_flight')
    // Wait (bounded) until the lease has been renewed past its first end.
    await until(key, (r) => (r?.leaseUntil ?? 0) > (admitted?.leaseUntil ?? 0) + 200, 2000)
    expect((await post(key)).status).toBe(409)
    open()
    expect((await first).status).toBe(201)
    expect(effects.get(key)).toBe(1)
  })

  it('a running request outlives a TTL shorter than its handler: neither admit nor the alarm frees it', async () => {
    const { post, hold, effects } = bank({ ttlSeconds: 1, inFlight: 'reject', replayCache: false })
    const key = newKey()
    const open = hold(key)
    const first = post(key)
    await until(key, (r) => r?.state === 'in_flight')
    await expireRecords(key) // the TTL has gone by; the lease has not
    await runDurableObjectAlarm(await stubFor(key))
    expect((await post(key)).status).toBe(409)
    open()
    expect((await first).status).toBe(201)
    expect(effects.get(key)).toBe(1)
  })

  it('the alarm never re-arms in the past for a record kept alive by its lease past the TTL (issue 11.6)', async () => {
    const key = newKey()
    await crashedWorker(key, { amount: 1 }, 60_000)
    await expireRecords(key) // the TTL has gone by; the lease has not
    const stub = await stubFor(key)
    await runInDurableObject(stub, (_obj: StableArea, state) => void state.storage.sql.exec(`DELETE FROM counters WHERE name = 'report_due'`)) // not the status report's wake-up (counters.ts)
    await runDurableObjectAlarm(stub)
    const next = await runInDurableObject(stub, (_obj: StableArea, state) => state.storage.getAlarm())
    expect(next).not.toBeNull()
    expect(next!).toBeGreaterThan(Date.now() + 30_000) // at the lease's end, not at the TTL already past
    expect(await recordOf(key)).toMatchObject({ state: 'in_flight' })
  })

  it('refuses a commit from a Worker whose lease was taken over', async () => {
    const key = newKey()
    const stale = await crashedWorker(key)
    await expireLeases(key)
    const fresh = await crashedWorker(key)
    if (stale.kind !== 'new' || fresh.kind !== 'new') throw new Error('expected two admissions')
    const stub = await api(key)
    const reply = { status: 201, headers: [], body: new Uint8Array([1]) }
    expect(await stub.commit({ lookup: lookupKey('', key), token: stale.token, reply, ttlMs: 60_000 })).toEqual({ ok: false, reason: 'lease_lost' })
    expect((await stub.commit({ lookup: lookupKey('', key), token: fresh.token, reply, ttlMs: 60_000 })).ok).toBe(true)
    expect(await stub.release(lookupKey('', key), stale.token)).toBe(false)
  })
})

describe('a restarted stable area', () => {
  it('still replays committed replies after the object is evicted', async () => {
    const key = newKey()
    const first = bank({ replayCache: false })
    const original = await (await first.post(key)).text()
    await evictDurableObject(await stubFor(key))
    const later = bank({ replayCache: false }) // a new isolate: no cached replies
    const again = await later.post(key)
    expect(await again.text()).toBe(original)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(later.effects.get(key)).toBeUndefined()
  })

  it('keeps an in-flight request across a hard reset, and its commit lands', async () => {
    const { post, hold, effects } = bank({ replayCache: false, inFlight: 'reject' })
    const key = newKey()
    const open = hold(key)
    const first = post(key)
    await until(key, (r) => r?.state === 'in_flight')
    await abortAllDurableObjects() // the object dies mid-request: memory gone, storage kept
    expect((await post(key)).status).toBe(409) // the admission survived
    open()
    expect((await first).status).toBe(201)
    expect((await post(key)).headers.get('idempotent-replayed')).toBe('true')
    expect(effects.get(key)).toBe(1)
  })
})

describe('storage stays bounded', () => {
  it('the alarm deletes expired records and their reply chunks; the key is then new again', async () => {
    const { app, effects } = bank({ replayCache: false })
    const key = newKey()
    app.post('/big', (c) => c.text('z'.repeat(1.5 * 1024 * 1024)))
    const post = () => app.request('/deposits', { method: 'POST', headers: { 'idempotency-key': key }, body: '{}' }, env)
    await post()
    const stub = await stubFor(key)
    expect(await runInDurableObject(stub, (_o: StableArea, s) => s.storage.getAlarm())).not.toBeNull()
    await expireRecords(key)
    expect(await runDurableObjectAlarm(stub)).toBe(true)
    expect(await recordOf(key)).toBeUndefined()
    expect(await runInDurableObject(stub, (_o: StableArea, s) => s.storage.sql.exec('SELECT count(*) AS n FROM reply_chunks').one().n)).toBe(0)
    const again = await post()
    expect(again.headers.get('idempotent-replayed')).toBeNull()
    expect(effects.get(key)).toBe(2)
  })

  it('splits a reply over rows and deletes every chunk on expiry', async () => {
    const key = newKey()
    const stub = await api(key)
    const lookup = lookupKey('', key)
    const admitted = await stub.admit({ lookup, fingerprint: 'f', leaseMs: 1000, ttlMs: 60_000, waitMs: 0 })
    if (admitted.kind !== 'new') throw new Error('expected new')
    const body = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => i % 251)
    await stub.commit({ lookup, token: admitted.token, ttlMs: 60_000, reply: { status: 200, headers: [['content-type', 'x/y']], body } })
    const chunks = await runInDurableObject(await stubFor(key), (_o: StableArea, s) => s.storage.sql.exec('SELECT count(*) AS n FROM reply_chunks WHERE lookup = ?', lookup).one().n)
    expect(chunks).toBe(4)
    const replay = await stub.admit({ lookup, fingerprint: 'f', leaseMs: 1000, ttlMs: 60_000, waitMs: 0 })
    expect(replay.kind === 'replay' && replay.reply.body).toEqual(body)
    await expireRecords(key)
    await runDurableObjectAlarm(await stubFor(key))
    expect(await runInDurableObject(await stubFor(key), (_o: StableArea, s) => s.storage.sql.exec('SELECT count(*) AS n FROM reply_chunks').one().n)).toBe(0)
  })

  it('records its schema version and migrates idempotently', async () => {
    const key = newKey()
    await crashedWorker(key)
    await evictDurableObject(await stubFor(key))
    const version = await runInDurableObject(await stubFor(key), (_o: StableArea, s) =>
      s.storage.sql.exec("SELECT v FROM meta WHERE k = 'schema_version'").one().v,
    )
    expect(version).toBe(SCHEMA_VERSION)
    expect(await recordOf(key)).toMatchObject({ state: 'in_flight' })
  })

  it('schema steps 10 and 11 clear the request (its query too) of every relay already past processing, and keep it on the ones still processing', async () => {
    const key = newKey()
    await crashedWorker(key)
    const relays = await runInDurableObject(await stubFor(key), (_o: StableArea, s) => {
      const sql = s.storage.sql
      // As an object at step 9 left them: the trigger not there yet, a released relay still holding its request.
      sql.exec('DROP TRIGGER relays_keep_request_while_processing')
      sql.exec("UPDATE meta SET v = 9 WHERE k = 'schema_version'")
      const row = (lookup: string, state: string) =>
        sql.exec(
          `INSERT INTO relays (lookup, request_id, state, plan, method, path, headers, body, key, ttl_ms, created_at) VALUES (?, 'r', ?, '{}', 'POST', '/a?token=T', '[["authorization","Bearer T"]]', x'01', 'k', 1000, 0)`,
          lookup,
          state,
        )
      row('old-released', 'released')
      row('old-processing', 'processing')
      migrate(s.storage)
      return sql.exec("SELECT lookup, path, headers, body IS NULL AS gone FROM relays WHERE lookup LIKE 'old-%' ORDER BY lookup").toArray()
    })
    // Step 11 takes the query too (a credential may ride in it), from the relays past processing only.
    expect(relays).toEqual([
      { lookup: 'old-processing', path: '/a?token=T', headers: '[["authorization","Bearer T"]]', gone: 0 },
      { lookup: 'old-released', path: '/a', headers: '[]', gone: 1 },
    ])
  })
})
