/**
 * An OnceObject tells a new key from memory, without reading its record
 * (OnceRecords' known lookups): never wrong in the dangerous direction. Every
 * key with a live record is found after restarts, expiries, sweeps, rolled
 * back runs, on both paths; past the limit of known lookups it reads every
 * key, as before. Effects are counted in the object's ledger.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { KNOWN_LOOKUPS_MAX } from '../../src/durable/once-object-records.js'
import { lookupKey } from '../../src/middleware/identity.js'
import { callEdge, edge, effects, inside, newAccount, newKey, stubOf, until } from './helpers.js'

type Step =
  | { kind: 'send'; key: number; amount: number; path: 'app' | 'lease' | 'call'; failing: boolean }
  | { kind: 'restart' }
  | { kind: 'expire'; key: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('send' as const), key: fc.nat(3), amount: fc.constantFrom(1, 2), path: fc.constantFrom('app' as const, 'lease' as const, 'call' as const), failing: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const), key: fc.nat(3) }) },
)

describe('known lookups (a new key told without a read)', () => {
  it('never takes a key with a live record for a new one: every request is run, replayed or refused as the records say, across restarts, expiries and rolled-back runs', async () => {
    const app = edge({ replayCache: false })
    const call = callEdge({ replayCache: false })
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 14 }), async (steps) => {
        const a = newAccount()
        const keys = [newKey(), newKey(), newKey(), newKey()]
        // The model: per key, its live record (the request it was made for; committed, or released by a failed run),
        // and its effects.
        const live: ({ request: string; committed: boolean } | undefined)[] = [undefined, undefined, undefined, undefined]
        const applied = [0, 0, 0, 0]
        for (const s of steps) {
          if (s.kind === 'restart') {
            await stubOf(a).restart().catch(() => {})
            continue
          }
          if (s.kind === 'expire') {
            await inside(a, (sql) => sql.exec('UPDATE once_records SET expires_at = ? WHERE lookup = ?', Date.now() - 1, lookupKey('', keys[s.key]!)))
            live[s.key] = undefined
            continue
          }
          const { send } = s.path === 'call' ? call : app
          // A failing run (503) rolls its effect back and leaves the key free, with its fingerprint kept. The lease
          // path (route 'calls') writes its record before its run and again after it.
          const res = await send(a, keys[s.key], {
            body: { amount: s.amount },
            ...(s.failing ? { mode: 'fail' as const } : {}),
            ...(s.path === 'lease' ? { route: 'calls' as const } : {}),
          })
          // What the fingerprint tells apart: the path (the lease route is another path) and the body.
          const request = `${s.path === 'lease' ? 'calls' : 'deposits'} ${s.amount}`
          const was = live[s.key]
          if (was !== undefined && was.request !== request) {
            expect(res.status).toBe(422)
          } else if (was?.committed) {
            expect(res.status).toBe(201)
            expect(res.headers.get('idempotent-replayed')).toBe('true')
          } else if (s.failing) {
            expect(res.status).toBe(503)
            live[s.key] = { request, committed: false }
            // The lease path has no transaction to roll the handler's write back: a 503 there is the app's own.
            if (s.path === 'lease') applied[s.key]!++
          } else {
            expect(res.status).toBe(201)
            expect(res.headers.get('idempotent-replayed')).toBeNull()
            live[s.key] = { request, committed: true }
            applied[s.key]!++
          }
          await res.arrayBuffer()
        }
        for (let i = 0; i < keys.length; i++) expect(await effects(a, keys[i]!)).toBe(applied[i])
      }),
      { numRuns: 12 },
    )
  })

  it('a key whose record the sweep deleted runs as new, and the keys it left are still found', async () => {
    const { send } = callEdge({ replayCache: false })
    const a = newAccount()
    const [gone, kept] = [newKey(), newKey()]
    expect((await send(a, gone)).status).toBe(201)
    const keptBody = await (await send(a, kept)).text()
    await inside(a, (sql) => sql.exec('UPDATE once_records SET expires_at = ? WHERE lookup = ?', Date.now() - 1, lookupKey('', gone)))
    // Sweeps run at most once a second, during requests: other keys' requests until it has run.
    await until(async () => {
      await send(a, newKey())
      return (await inside(a, (sql) => sql.exec('SELECT count(*) AS n FROM once_records WHERE lookup = ?', lookupKey('', gone)).one().n)) === 0
    })
    const again = await send(a, gone, { body: { amount: 5 } }) // another body: the old record is gone, not a 422
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBeNull()
    expect(await effects(a, gone)).toBe(2)
    const replay = await send(a, kept)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect(await replay.text()).toBe(keptBody)
    expect(await effects(a, kept)).toBe(1)
  })

  it(`past ${KNOWN_LOOKUPS_MAX} records reads every key, as before: a key from before a restart is still replayed, a new one runs`, async () => {
    const { send } = callEdge({ replayCache: false })
    const a = newAccount()
    const k = newKey()
    const first = await send(a, k, { body: { amount: 7 } })
    expect(first.status).toBe(201)
    const body = await first.text()
    // Other keys' records, more than the object keeps in memory; then a fresh instance loads what it can.
    await inside(a, (sql) => {
      for (let i = 0; i < KNOWN_LOOKUPS_MAX + 5; i++) {
        sql.exec(`INSERT INTO once_records (lookup, fingerprint, request_id, state, attempt, expires_at) VALUES (?, 'f', 'r', 'released', 1, ?)`, `filler-${i}`, Date.now() + 60_000)
      }
    })
    await stubOf(a).restart().catch(() => {})
    const again = await send(a, k, { body: { amount: 7 } })
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await again.text()).toBe(body)
    expect((await send(a, k, { body: { amount: 8 } })).status).toBe(422)
    const other = newKey()
    expect((await send(a, other)).status).toBe(201)
    expect((await send(a, other)).headers.get('idempotent-replayed')).toBe('true')
    expect(await effects(a, k)).toBe(1)
    expect(await effects(a, other)).toBe(1)
  })
})
