import { env, runInDurableObject } from 'cloudflare:test'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { learnDomains } from '../../src/durable/directory.js'
import type { DomainStatus, ReplicaOrigins } from '../../src/durable/types.js'
import { domainObject } from './domain-objects.js'

/**
 * The directory's rules (issue 15 item 20), on its tables alone: which domains a learned change of origins is
 * pushed to, and which keep their own; and a domain's own rule for a write that undoes a push.
 */

const set = (...names: string[]): ReplicaOrigins => names.map((name) => ({ name, url: `https://${name}.example` }))
const X = set('r1', 'r2', 'r3')
const Y = set('r1', 'r2', 'r3', 'r4')
const Z = set('s1', 's2')
const domain = (name: string, origins: ReplicaOrigins, at: number, replaced?: { origins: ReplicaOrigins; at: number }): DomainStatus => ({
  domain: name,
  head: 1,
  prunedThrough: 0,
  replicas: [],
  replicaSet: { origins, at, ...(replaced ? { replaced } : {}) },
})

/** Runs `learn` in a scratch object's storage and answers which domains have a push due, by domain. */
async function directoryAfter(learn: (sql: SqlStorage) => void): Promise<Record<string, string | null>> {
  const stub = env.ONCE.get(env.ONCE.idFromName(`directory-test/${crypto.randomUUID()}`))
  return runInDurableObject(stub, (_i, state) => {
    learn(state.storage.sql)
    const rows = state.storage.sql
      .exec<{ domain: string; push_at: number | null; origins: string }>('SELECT d.domain, d.push_at, s.origins FROM directory d JOIN replica_sets s ON s.id = d.target ORDER BY d.domain')
      .toArray()
    return Object.fromEntries(rows.map((r) => [r.domain, r.push_at === null ? null : (JSON.parse(r.origins) as ReplicaOrigins).map((o) => o.name).join(',')]))
  })
}

describe('the directory of replica sets (issue 15 item 20)', () => {
  it('a change learned from one domain is pushed to the others of the set, not to a domain written later, not to another set', async () => {
    const pushes = await directoryAfter((sql) => {
      learnDomains(sql, 'o-a', [domain('a', X, 1)], 1)
      learnDomains(sql, 'o-b', [domain('b', X, 1)], 1)
      learnDomains(sql, 'o-c', [domain('c', X, 20)], 1) // written (with X) after the change below was made
      learnDomains(sql, 'o-e', [domain('e', Z, 1)], 1)
      learnDomains(sql, 'o-a', [domain('a', Y, 10, { origins: X, at: 10 })], 11) // a write brought r4 to a
      learnDomains(sql, 'o-f', [domain('f', X, 5)], 12) // reports after the change: told too
    })
    expect(pushes).toEqual({ a: null, b: 'r1,r2,r3,r4', c: null, e: null, f: 'r1,r2,r3,r4' })
  })

  it('the newest change wins: a later write that removes the replica again is pushed to the domains that got it', async () => {
    const pushes = await directoryAfter((sql) => {
      learnDomains(sql, 'o-a', [domain('a', X, 1)], 1)
      learnDomains(sql, 'o-b', [domain('b', X, 1)], 1)
      learnDomains(sql, 'o-a', [domain('a', Y, 10, { origins: X, at: 10 })], 11)
      learnDomains(sql, 'o-b', [domain('b', Y, 10)], 12) // told
      learnDomains(sql, 'o-a', [domain('a', X, 30, { origins: Y, at: 30 })], 31) // rolled back on a
      // A domain told of the older change later (its answer came late) is told again: the newest change wins.
      learnDomains(sql, 'o-c', [domain('c', Y, 10)], 32)
    })
    expect(pushes).toEqual({ a: null, b: 'r1,r2,r3', c: 'r1,r2,r3' })
  })

  it('a report with a malformed replica set is taken for its figures and left out of the directory', async () => {
    const pushes = await directoryAfter((sql) => {
      const bad = [
        { ...domain('x', X, 1), replicaSet: { origins: 'r1', at: 1 } },
        { ...domain('y', X, 1), replicaSet: { origins: [{ name: 1 }], at: 1 } },
        { ...domain('z', [], 1) },
      ] as unknown as DomainStatus[]
      learnDomains(sql, 'o-x', bad, 1)
    })
    expect(pushes).toEqual({})
  })

  it("a write that brings back the origins a push replaced wins in its domain and is not spread (another route's, or an old Worker's)", async () => {
    const acct = domainObject()
    const stub = acct.stub
    const write = (lookup: string, origins: ReplicaOrigins) => acct.write(origins, lookup)
    expect((await write('k1', X)).kind).toBe('new')
    const [pushed] = await stub.adoptReplicaSets([{ domain: 'acct', origins: Y, learnedAt: Date.now() + 1 }])
    expect(pushed?.replicas.map((r) => [r.name, r.state])).toEqual([['r1', 'active'], ['r2', 'active'], ['r3', 'active'], ['r4', 'joining']])
    expect(pushed?.replicaSet?.replaced).toBeUndefined()
    // An older push changes nothing.
    const [again] = await stub.adoptReplicaSets([{ domain: 'acct', origins: Z, learnedAt: 5 }])
    expect(again?.replicaSet?.origins.map((o) => o.name)).toEqual(['r1', 'r2', 'r3', 'r4'])
    expect((await write('k2', X)).kind).toBe('new')
    const [after] = (await stub.domains()).filter((d) => d.domain === 'acct')
    expect(after?.replicas.map((r) => r.name)).toEqual(['r1', 'r2', 'r3'])
    expect(after?.replicaSet?.replaced).toBeUndefined() // a correction, not a change to spread
    // A write with new origins of the same service is a change, reported with the origins it replaced.
    expect((await write('k3', set('r1', 'r2', 'r5'))).kind).toBe('new')
    const [changed] = (await stub.domains()).filter((d) => d.domain === 'acct')
    expect(changed?.replicaSet?.replaced?.origins.map((o) => o.name)).toEqual(['r1', 'r2', 'r3'])
  })

  it('a domain that missed a step is not pushed a set it shares no origin with (its object would refuse it)', async () => {
    const [A, B, C] = [set('a1', 'a2'), set('a2', 'b1'), set('b1', 'b2')]
    const pushes = await directoryAfter((sql) => {
      learnDomains(sql, 'o-x', [domain('x', A, 1)], 1)
      learnDomains(sql, 'o-y', [domain('y', A, 1)], 1)
      learnDomains(sql, 'o-y', [domain('y', B, 10, { origins: A, at: 10 })], 11) // a1 → b1
      learnDomains(sql, 'o-z', [domain('z', B, 15)], 15)
      learnDomains(sql, 'o-z', [domain('z', C, 20, { origins: B, at: 20 })], 21) // a2 → b2, before x was told of B
    })
    expect(pushes).toEqual({ x: null, y: 'b1,b2', z: null })
  })

  it('a write that replaces every origin (another route with a colliding domain name) is taken in its domain only: not reported as a change', async () => {
    const acct = domainObject()
    const write = async (origins: ReplicaOrigins) => {
      expect((await acct.write(origins)).kind).toBe('new')
      return acct.state()
    }
    await write(X)
    // Same names at other URLs are another service: not a change to spread, and no replica keeps the progress of
    // the server that had its name (each starts over, fed the log from its start).
    const renamed = await write(X.map((o) => ({ name: o.name, url: o.url.replace('.example', '.other.example') })))
    expect(renamed.replicaSet?.replaced).toBeUndefined()
    expect(renamed.replicas.map((r) => [r.name, r.state, r.acked])).toEqual([['r1', 'joining', 0], ['r2', 'joining', 0], ['r3', 'joining', 0]])
    const other = await write(Z)
    expect(other.replicas.map((r) => r.name)).toEqual(['s1', 's2'])
    expect(other.replicaSet?.replaced).toBeUndefined()
    // And the directory never links two sets that share no origin, whatever a report says.
    const pushes = await directoryAfter((sql) => {
      learnDomains(sql, 'o-a', [domain('a', X, 1)], 1)
      learnDomains(sql, 'o-b', [domain('b', X, 1)], 1)
      learnDomains(sql, 'o-a', [domain('a', Z, 10, { origins: X, at: 10 })], 11)
    })
    expect(pushes).toEqual({ a: null, b: null })
  })
})

describe('the directory, property (issue 15 item 20)', () => {
  it('reports learned in any interleaving (each domain in its own order) leave the same pushes due', async () => {
    const pool = [set('a1', 'a2'), set('a1', 'a2', 'a3'), set('a1', 'a3'), set('b1')]
    // Per domain: the sets its writes gave it, in order (a change reports the set it replaced).
    const history = fc.array(fc.array(fc.integer({ min: 0, max: pool.length - 1 }), { minLength: 1, maxLength: 4 }), { minLength: 2, maxLength: 6 })
    await fc.assert(
      fc.asyncProperty(history, fc.infiniteStream(fc.boolean()), fc.infiniteStream(fc.boolean()), async (domains, coinA, coinB) => {
        let clock = 0
        const reports = domains.map((sets, i) =>
          sets.map((s, k) => {
            const at = ++clock * 10
            const replaced = k > 0 && sets[k - 1] !== s ? { origins: pool[sets[k - 1]!]!, at } : undefined
            return domain(`d${i}`, pool[s]!, at, replaced)
          }),
        )
        const interleave = (coins: IterableIterator<boolean>) => {
          const queues = reports.map((r) => [...r])
          const out: { reporter: string; d: DomainStatus }[] = []
          while (queues.some((q) => q.length > 0)) {
            const open = queues.map((q, i) => [q, i] as const).filter(([q]) => q.length > 0)
            const pick = open.find(() => coins.next().value) ?? open[0]!
            out.push({ reporter: `o-${pick[1]}`, d: pick[0].shift()! })
          }
          return out
        }
        const [first, second] = await Promise.all(
          [interleave(coinA), interleave(coinB)].map((order) => directoryAfter((sql) => order.forEach((r, n) => learnDomains(sql, r.reporter, [r.d], 1000 + n)))),
        )
        expect(first).toEqual(second)
      }),
      { numRuns: 150 },
    )
  })
})
