import { env } from 'cloudflare:test'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { StatusApi, StatusReport } from '../../src/durable/counters.js'

/** The status object's arithmetic (src/durable/counters.ts): totals from reports, whatever their order or repeats. */

const statusObject = () => env.ONCE.get(env.ONCE.idFromName(`status-test/${crypto.randomUUID()}`)) as unknown as StatusApi

const counts = fc.record({ admits: fc.nat(1000), replays: fc.nat(1000), conflicts: fc.nat(1000), mismatches: fc.nat(1000) })

describe('the status object', () => {
  it('counts each reporter once: repeated, reordered and stale reports add nothing beyond its latest totals', async () => {
    await fc.assert(
      fc.asyncProperty(
        // Per reporter, a growing series of totals (each report's counts at least the last one's).
        fc.array(fc.array(counts, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 40, maxLength: 40 }),
        async (series, repeats, keys) => {
          const status = statusObject()
          const reports: StatusReport[] = []
          series.forEach((steps, r) => {
            let total = { admits: 0, replays: 0, conflicts: 0, mismatches: 0 }
            steps.forEach((step, i) => {
              total = { admits: total.admits + step.admits, replays: total.replays + step.replays, conflicts: total.conflicts + step.conflicts, mismatches: total.mismatches + step.mismatches }
              reports.push({ reporter: `r${r}`, counts: total, since: 1000 + r, domains: [], at: 10_000 + i })
            })
          })
          // Some sent twice (a lost answer, retried), and all delivered in a random order.
          const delivered = [...reports, ...repeats.map((n) => reports[n % reports.length]!)]
            .map((report, i) => ({ report, key: keys[i % keys.length]! + i / 1e6 }))
            .sort((a, b) => a.key - b.key)
          for (const { report } of delivered) await status.reportStatus(report)
          const snapshot = await status.readStatus()
          const expected = { admits: 0, replays: 0, conflicts: 0, mismatches: 0 }
          for (const r of series.keys()) {
            const last = reports.filter((x) => x.reporter === `r${r}`).at(-1)!.counts
            for (const k of Object.keys(expected) as (keyof typeof expected)[]) expected[k] += last[k]
          }
          expect(snapshot.counts).toMatchObject(expected)
          expect(snapshot.counts.since).toBe(1000)
        },
      ),
      { numRuns: 25 },
    )
  })

  it('keeps the domains each object reports, the troubled first, and counts each domain once', async () => {
    const status = statusObject()
    const zero = { admits: 0, replays: 0, conflicts: 0, mismatches: 0 }
    const replica = (name: string, state: string, acked: number, head: number) => ({ name, url: '', state, acked, lag: head - acked, reason: state === 'suspect' ? 'differs' : null })
    const domain = (d: string, head: number, replicas: ReturnType<typeof replica>[]) => ({ domain: d, head, prunedThrough: 0, replicas }) as unknown as StatusReport['domains'][number]
    await status.reportStatus({ reporter: 'a', counts: zero, since: 1, at: 1, domains: [domain('calm', 3, [replica('r1', 'active', 3, 3), replica('r2', 'active', 3, 3)])] })
    await status.reportStatus({ reporter: 'b', counts: zero, since: 1, at: 1, domains: [domain('odd', 5, [replica('r1', 'active', 5, 5), replica('r2', 'suspect', 4, 5)])] })
    await status.reportStatus({ reporter: 'b', counts: zero, since: 1, at: 2, domains: [domain('odd', 6, [replica('r1', 'active', 6, 6), replica('r2', 'suspect', 4, 6)])] })
    const s = await status.readStatus()
    expect(s.domainCount).toBe(2)
    expect(s.domains.map((d) => d.domain)).toEqual(['odd', 'calm'])
    expect(s.domains[0]).toMatchObject({ head: 6, replicas: [{ name: 'r1', lag: 0 }, { name: 'r2', state: 'suspect', acked: 4, lag: 2 }] })
    expect(s.replicas).toEqual({ r2: { suspect: 1 } })
    expect(s.suspects).toEqual([{ domain: 'odd', name: 'r2', reason: 'differs' }])
  })

  it('refuses a malformed report without changing anything', async () => {
    const status = statusObject()
    const bad = { reporter: 'x', counts: { admits: -1, replays: 0, conflicts: 0, mismatches: 0 }, since: 1, at: 1, domains: [] }
    // Through .then alone: expect() would read properties of the RPC promise, and each read is a pipelined call
    // that rejects again, unhandled.
    const refused = await status.reportStatus(bad).then(() => undefined, (err: unknown) => err)
    expect(String(refused)).toMatch(/status report/)
    expect((await status.readStatus()).counts.admits).toBe(0)
  })
})
