/**
 * Crash between effect and record is impossible by construction: the app's
 * writes and the record commit in one storage transaction. The object is
 * reset (`ctx.abort()`, as a crash or an eviction would) after the effect
 * and before the reply, after a real turn of the event loop, or after the
 * reply left the handler; in every run the effect and its record are both
 * there or both gone, and the client's retry makes it exactly once.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Mode } from './fixture.js'
import { edge, effects, newAccount, newKey, recordOf } from './helpers.js'

/** Both or neither: one effect exactly when the record is committed. */
async function consistent(account: string, key: string): Promise<'both' | 'neither'> {
  const n = await effects(account, key)
  const committed = (await recordOf(account, key))?.state === 'committed'
  expect(n).toBe(committed ? 1 : 0)
  return committed ? 'both' : 'neither'
}

/** Retries with the same key until the answer is final, as a client does; bounded. */
async function settle(send: ReturnType<typeof edge>['send'], account: string, key: string, route: 'deposits' | 'calls' = 'deposits') {
  for (let i = 0; i < 20; i++) {
    const res = await send(account, key, { route })
    if (res.status === 201) return res
    expect(res.status).toBe(503) // the object was reset under the request: retryable
  }
  throw new Error(`${key} never settled`)
}

describe('crash between effect and record (ctx.abort)', () => {
  it('over 60 runs, the effect and its record are both present or both absent, and the retry applies it once', async () => {
    const { send } = edge({ replayCache: false })
    const modes: Mode[] = ['abort', 'abort-now', 'abort-after', 'ok']
    const seen = { both: 0, neither: 0 }
    for (let i = 0; i < 60; i++) {
      const a = newAccount()
      const k = newKey()
      const res = await send(a, k, { mode: modes[i % modes.length]! })
      expect([201, 503]).toContain(res.status)
      seen[await consistent(a, k)]++
      await settle(send, a, k)
      expect(await effects(a, k)).toBe(1)
    }
    // Both outcomes happened: the crash landed before and after the commit.
    expect(seen.neither).toBeGreaterThan(0)
    expect(seen.both).toBeGreaterThan(0)
  })

  it('a lease route has the window once() has: the effect survives a crash its record does not (so declare lease only for call-outs)', async () => {
    const { send } = edge({ replayCache: false })
    const a = newAccount()
    const k = newKey()
    expect((await send(a, k, { route: 'calls', mode: 'abort' })).status).toBe(503)
    expect(await effects(a, k)).toBe(1)
    expect((await recordOf(a, k))?.state).toBe('in_flight')
    await settle(send, a, k, 'calls')
    expect(await effects(a, k)).toBe(2) // applied twice: what the transaction path rules out
  })
})

/** One request: which key (of 4, two atomic routes and two lease routes), and what happens to it. */
const step = fc.record({
  key: fc.nat({ max: 3 }),
  mode: fc.constantFrom<Mode>('ok', 'ok', 'fail', 'throw', 'bad-request', 'abort', 'abort-now', 'abort-after'),
})
const history = fc.array(fc.array(step, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 5 })

describe('exactly once, over random interleavings (fast-check)', () => {
  it('every key takes effect at most once, with its record; all its answers agree; once healthy, exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(history, async (batches) => {
        const { send } = edge({ inFlight: 'reject', replayCache: false })
        const keys = Array.from({ length: 4 }, newKey)
        // Keys 0 and 1 run in a transaction; 2 and 3 are lease routes, which (like once()) keep an effect done before a
        // failure or a crash: they get only faults that come before any effect (their window is shown above), and
        // live in an object of their own, since a crash of the object (another key's abort) is a crash for them too.
        const route = (i: number) => (i < 2 ? 'deposits' : 'calls') as 'deposits' | 'calls'
        const [atomic, leased] = [newAccount(), newAccount()]
        const accountOf = (key: string) => (keys.indexOf(key) < 2 ? atomic : leased)
        const finals = new Map<string, Set<string>>()
        const note = async (key: string, res: Response) => {
          if (res.status !== 201 && res.status !== 400) return
          const seen = finals.get(key) ?? new Set()
          seen.add(`${res.status} ${await res.text()}`)
          finals.set(key, seen)
        }
        for (const steps of batches) {
          await Promise.all(
            steps.map(async ({ key: i, mode }) => {
              const key = keys[i]!
              const m: Mode = route(i) === 'calls' && mode !== 'bad-request' ? 'ok' : mode
              const res = await send(accountOf(key), key, { route: route(i), mode: m })
              expect([201, 400, 409, 500, 503]).toContain(res.status)
              await note(key, res)
            }),
          )
          for (const key of keys) {
            const a = accountOf(key)
            expect(await effects(a, key)).toBeLessThanOrEqual(1)
            const record = await recordOf(a, key)
            if (record?.state !== 'in_flight') expect(await effects(a, key)).toBe(record?.state === 'committed' && record.status === 201 ? 1 : 0)
          }
        }
        for (const [i, key] of keys.entries()) {
          let res: Response | undefined
          for (let t = 0; t < 20 && (res === undefined || ![201, 400].includes(res.status)); t++) res = await send(accountOf(key), key, { route: route(i) })
          await note(key, res!)
          expect(finals.get(key)?.size).toBe(1)
          const [only] = finals.get(key)!
          expect(await effects(accountOf(key), key)).toBe(only!.startsWith('201') ? 1 : 0)
        }
      }),
      { numRuns: 25 },
    )
  })
})
