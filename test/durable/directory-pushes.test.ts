import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { learnDomains } from '../../src/durable/directory.js'
import type { RelayPlan, ReplicaOrigins, StableAreaApi } from '../../src/durable/types.js'
import { domainObject as sharedDomainObject, reported as d } from './domain-objects.js'

/**
 * Issue 15 item 20: a domain's rule for a write that undoes a push (it remembers the set the latest push replaced,
 * and forgets it when a write confirms the pushed set), and the directory's rules beyond one replica set.
 */

const set = (...names: string[]): ReplicaOrigins => names.map((name) => ({ name, url: `https://${name}.example` }))
const V1 = set('r1', 'r2', 'r3')
const V2 = set('r1', 'r2', 'r3', 'r4')
const V3 = set('r1', 'r2', 'r3', 'r4', 'r5')
const names = (o: ReplicaOrigins | undefined) => o?.map((x) => x.name).join(',')

/** A domain object whose writes must each be admitted. */
function domainObject() {
  const o = sharedDomainObject()
  return { ...o, write: async (origins: ReplicaOrigins) => expect((await o.write(origins)).kind).toBe('new') }
}

describe('a write that undoes a push (issue 15 item 20)', () => {
  it('a v2 Worker still running during the v2 → v3 rollout that writes a twice-pushed domain wins there and is not spread', async () => {
    const { stub, write, state, originsSetAt } = domainObject()
    await write(V1) // v1
    await originsSetAt(0)
    await stub.adoptReplicaSets([{ domain: 'acct', origins: V2, learnedAt: 1 }]) // v2 rolled out (r4 added elsewhere)
    await stub.adoptReplicaSets([{ domain: 'acct', origins: V3, learnedAt: 2 }]) // v3 rolled out (r5 added elsewhere)
    await write(V2) // a v2 Worker still running: docs/replication.md says this wins here and is NOT spread
    const s = await state()
    expect(names(s.replicaSet?.origins)).toBe('r1,r2,r3,r4')
    // Docs: "a write that brings back exactly the origins a push replaced in its domain (a Worker of the previous
    // version still running during a rolling deploy …) wins in that domain and is not spread".
    expect(s.replicaSet?.replaced, 'the straggler write is reported as a change to spread').toBeUndefined()
  })

  it('…so the directory pushes nothing to the quiet domains on v3', async () => {
    const { stub, write, state, originsSetAt } = domainObject()
    await write(V1)
    await originsSetAt(0)
    await stub.adoptReplicaSets([{ domain: 'acct', origins: V2, learnedAt: 1 }])
    await stub.adoptReplicaSets([{ domain: 'acct', origins: V3, learnedAt: 2 }])
    await write(V2)
    const report = await state()
    const dir = env.ONCE.get(env.ONCE.idFromName(`directory-pushes/${crypto.randomUUID()}`))
    const pushes = await runInDurableObject(dir, (_i, st) => {
      const sql = st.storage.sql
      learnDomains(sql, 'o-b', [d('b', V1, 1)], 1)
      learnDomains(sql, 'o-c', [d('c', V1, 1)], 1)
      learnDomains(sql, 'o-b', [d('b', V2, 10, { origins: V1, at: 10 })], 11) // v2's first write
      learnDomains(sql, 'o-b', [d('b', V3, 20, { origins: V2, at: 20 })], 21) // v3's first write
      learnDomains(sql, 'o-c', [d('c', V3, 20)], 22) // c was told of v3
      learnDomains(sql, 'o-acct', [report], 23) // the straggler's report
      return Object.fromEntries(
        st.storage.sql
          .exec<{ domain: string; push_at: number | null; origins: string }>('SELECT d.domain, d.push_at, s.origins FROM directory d JOIN replica_sets s ON s.id = d.target')
          .toArray()
          .map((r) => [r.domain, r.push_at === null ? null : names(JSON.parse(r.origins) as ReplicaOrigins)]),
      )
    })
    expect(pushes.c, 'a quiet domain on v3 is pushed the older v2 (its r5 removed)').toBeNull()
  })

  it('removing a replica that a push brought is spread once a write has confirmed the pushed set', async () => {
    const { stub, write, state, originsSetAt } = domainObject()
    await write(V1)
    await originsSetAt(0)
    await stub.adoptReplicaSets([{ domain: 'acct', origins: V2, learnedAt: 1 }])
    await write(V2) // the new Worker writes here: the domain now has V2 by its own write
    await write(V1) // the operator removes r4 again; this is the first write after the deploy
    // Docs: "Removing a replica travels the same way: the first write without it removes it from its domain, the
    // report carries the change, and every domain the directory knows drops it".
    expect(names((await state()).replicaSet?.replaced?.origins), 'the removal is reported as a change to spread').toBe('r1,r2,r3,r4')
  })
  it('undoing an added replica in two deploys (drain, then remove) is spread from a domain the directory pushed it to', async () => {
    const V2drain = [...V1, { name: 'r4', url: 'https://r4.example', drain: true }]
    const x = domainObject()
    await x.write(V1)
    await x.originsSetAt(0)
    await x.stub.adoptReplicaSets([{ domain: 'acct', origins: V2, learnedAt: 1 }])
    await x.write(V2drain) // the drain deploy's first write lands on a pushed domain: spread
    expect(names((await x.state()).replicaSet?.replaced?.origins)).toBe('r1,r2,r3,r4')
    const y = domainObject()
    await y.write(V1)
    await y.originsSetAt(0)
    await y.stub.adoptReplicaSets([{ domain: 'acct', origins: V2, learnedAt: 1 }])
    await y.stub.adoptReplicaSets([{ domain: 'acct', origins: V2drain, learnedAt: 2 }])
    await y.write(V1) // the removal's first write lands on a domain pushed the drained set: spread
    const s = await y.state()
    expect(s.replicaSet?.replaced?.origins.find((o) => o.name === 'r4')).toMatchObject({ drain: true })
    // r4 is kept aside, not forgotten: the domain lists r1–r3 only.
    expect(s.replicas.map((r) => r.name)).toEqual(['r1', 'r2', 'r3'])
  })
})

describe('the directory beyond one replica set (issue 15 item 20)', () => {
  const scratch = () => env.ONCE.get(env.ONCE.idFromName(`directory-pushes/${crypto.randomUUID()}`))

  it('a domain that keeps its own (older) set is not counted for the new replica it does not list', async () => {
    const { joinProgress } = await import('../../src/durable/directory.js')
    const joins = await runInDurableObject(scratch(), (_i, st) => {
      const sql = st.storage.sql
      learnDomains(sql, 'o-a', [d('a', V1, 1)], 1)
      learnDomains(sql, 'o-b', [d('b', V1, 1)], 1)
      learnDomains(sql, 'o-a', [d('a', V2, 10, { origins: V1, at: 10 })], 11) // r4 added on a
      learnDomains(sql, 'o-b', [d('b', V1, 20)], 21) // b written later with V1 (other route / old Worker): keeps its own, no r4
      return joinProgress(sql)
    })
    // b does not list r4 at all, yet it is counted in r4's domains and as up to date there.
    expect(joins.find((j) => j.name === 'r4')).toEqual({ name: 'r4', domains: 1, upToDate: 1, joining: 0, resync: 0, waiting: 0 })
  })

  it("a replica's join progress does not count the states of another service's replica with the same name", async () => {
    const { joinProgress } = await import('../../src/durable/directory.js')
    const joins = await runInDurableObject(scratch(), (_i, st) => {
      const sql = st.storage.sql
      learnDomains(sql, 'o-a', [d('a', V1, 1)], 1)
      learnDomains(sql, 'o-a', [d('a', V2, 10, { origins: V1, at: 10 })], 11)
      const row = `INSERT INTO status_replicas (domain, name, url, state, head, acked, lag, reason, reported_at) VALUES (?, 'r4', ?, ?, 3, 0, 3, NULL, 1)`
      sql.exec(row, 'a', 'https://r4.example', 'joining')
      sql.exec(row, 'cart-9', 'https://r4.other-service.example', 'stale') // another service's r4
      return joinProgress(sql)
    })
    expect(joins.find((j) => j.name === 'r4')).toEqual({ name: 'r4', domains: 1, upToDate: 0, joining: 1, resync: 0, waiting: 0 })
  })

  it('a domain that reported before the directory is matched to a set by name and URL; one of another service (same names, other URLs) is never moved', async () => {
    const other = (...names: string[]): ReplicaOrigins => names.map((name) => ({ name, url: `https://${name}.other-service.example` }))
    const tag = crypto.randomUUID().slice(0, 8)
    const [known, unknown] = [`cart-url-${tag}`, `cart-old-${tag}`]
    // The domains' objects: another route's, whose origins are also named r1, r2, r3. Their origins were set before the upgrade.
    for (const dom of [known, unknown]) {
      const stub = env.ONCE.get(env.ONCE.idFromName(`once/domain/${dom}`)) as unknown as StableAreaApi
      const plan: RelayPlan = { strategy: 'replicate', origins: other('r1', 'r2', 'r3'), timeoutMs: 1000, deadlineMs: 2000, maxAttempts: 1, maxResponseBytes: 1024 }
      const lookup = crypto.randomUUID()
      const relay = { key: lookup, plan, request: { method: 'POST', path: '/x', headers: [], body: new Uint8Array() } }
      expect((await stub.admit({ lookup, fingerprint: lookup, leaseMs: 60_000, ttlMs: 60_000, waitMs: 0, domain: dom, relay })).kind).toBe('new')
      await runInDurableObject(stub as unknown as DurableObjectStub, (_i, st) => void st.storage.sql.exec(`UPDATE domains SET plan_at = 0`))
    }
    const dir = scratch()
    const pushes = await runInDurableObject(dir, (_i, st) => {
      const sql = st.storage.sql
      // The figures know both from before the upgrade: `known` with its replicas' URLs, `unknown` from before the
      // figures kept URLs (schema step 8).
      for (const o of other('r1', 'r2', 'r3')) {
        sql.exec(`INSERT INTO status_replicas (domain, name, url, state, head, acked, lag, reason, reported_at) VALUES (?, ?, ?, 'active', 3, 3, 0, NULL, 1)`, known, o.name, o.url)
        sql.exec(`INSERT INTO status_replicas (domain, name, state, head, acked, lag, reason, reported_at) VALUES (?, ?, 'active', 3, 3, 0, NULL, 1)`, unknown, o.name)
      }
      learnDomains(sql, 'o-a', [d('a', V1, 1)], 1)
      learnDomains(sql, 'o-a', [d('a', V2, 10, { origins: V1, at: 10 })], 11)
      return sql.exec<{ domain: string; push_at: number | null }>('SELECT domain, push_at FROM directory').toArray()
    })
    expect(pushes.find((p) => p.domain === known), 'a domain whose URLs differ is not of this set').toBeUndefined()
    // One whose URLs the figures do not know is told, and its object refuses: its origins share none with the push.
    expect(pushes.find((p) => p.domain === unknown)?.push_at).not.toBeNull()
    await runInDurableObject(dir, (_i, st) => st.storage.setAlarm(Date.now() + 60_000))
    expect(await runDurableObjectAlarm(dir)).toBe(true)
    const placed = await runInDurableObject(dir, (_i, st) =>
      st.storage.sql
        .exec<{ push_at: number | null; origins: string }>('SELECT d.push_at, s.origins FROM directory d JOIN replica_sets s ON s.id = d.set_id WHERE d.domain = ?', unknown)
        .one(),
    )
    expect(placed.push_at, 'placed under its own set, nothing more to push').toBeNull()
    expect((JSON.parse(placed.origins) as ReplicaOrigins).map((o) => o.url)).toEqual(other('r1', 'r2', 'r3').map((o) => o.url))
    for (const dom of [known, unknown]) {
      const stub = env.ONCE.get(env.ONCE.idFromName(`once/domain/${dom}`)) as unknown as StableAreaApi
      // Even told directly, a domain's object takes no set of another service.
      const [after] = await stub.adoptReplicaSets([{ domain: dom, origins: V2, learnedAt: 11 }])
      expect(after?.replicas.map((r) => [r.name, r.url, r.acked])).toEqual(other('r1', 'r2', 'r3').map((o) => [o.name, o.url, 0]))
    }
  })
})
