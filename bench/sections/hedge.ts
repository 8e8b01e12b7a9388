/** Section 3: hedged reads against a single origin with a 5% tail at 10× its median. */
import type { RunningOrigin } from '../../examples/origin/server.js'
import type { BenchContext, SectionResult } from '../lib/context.js'
import { timed } from '../lib/http.js'
import { pairedRounds, pooled, roundPercentiles } from '../lib/paired.js'
import { progress } from '../lib/progress.js'
import { fmtRatio, median, ms, pairedRatio, percentile, table, tailCount, verdict } from '../lib/stats.js'

const SEED = 20261125
const TAIL_P = 0.05

/** Waits until the origins' request counters stop moving (hedges already sent still arriving). */
export async function settle(origins: RunningOrigin[], quietMs = 200, maxMs = 5000): Promise<number[]> {
  const deadline = Date.now() + maxMs
  let last = await Promise.all(origins.map(async (o) => (await o.stats()).requests))
  let quietSince = Date.now()
  while (Date.now() < deadline && Date.now() - quietSince < quietMs) {
    await new Promise((r) => setTimeout(r, 50))
    const now = await Promise.all(origins.map(async (o) => (await o.stats()).requests))
    if (now.some((x, i) => x !== last[i])) quietSince = Date.now()
    last = now
  }
  return last
}

export async function hedgeSection(ctx: BenchContext): Promise<SectionResult> {
  const { base, agent, runId: run, settings, origins } = ctx
  const get = (variant: string) => timed(base, agent, { method: 'GET', path: `/accounts/h-${run}`, headers: { 'bench-variant': variant }, expect: 200 })

  // Calibration: the fault-free median, end to end, sets the tail and the fixed hedge delay.
  const calib: number[] = []
  for (let i = 0; i < 200; i++) {
    if (i % 20 === 0) progress(`3/6 hedge · calibrating ${i}/200`)
    calib.push(await get('single:h-b1'))
  }
  const m = median(calib.slice(50))
  const tailMs = Math.round(9 * m) // a tail request then takes ≈ 10 × the median, end to end
  const fixedMs = Math.max(1, Math.round(2 * m))
  for (const name of ['h-a1', 'h-a2', 'h-a3']) origins[name]!.setFaults({ tail: { p: TAIL_P, ms: tailMs, seed: SEED } })

  const variants = [
    { name: 'single origin, 5% tail', send: () => get('single:h-a1') },
    { name: 'single origin, no faults', send: () => get('single:h-b1') },
    { name: "hedged, hedgeAfterMs 'auto' (p95)", send: () => get('hedge:h-a2,h-b2,auto') },
    { name: `hedged, hedgeAfterMs ${fixedMs} (≈2× median)`, send: () => get(`hedge:h-a3,h-b3,${fixedMs}`) },
  ]
  const pairs = [
    [origins['h-a2']!, origins['h-b2']!],
    [origins['h-a3']!, origins['h-b3']!],
  ]
  const extra: number[][] = [[], []] // per hedged variant, per round, % extra origin requests
  let before: number[][] = []
  const samples = await pairedRounds({
    label: '3/6 hedge',
    variants,
    rounds: settings.rounds,
    perRound: settings.hedgePerRound,
    warmup: 50,
    beforeRound: async () => {
      before = await Promise.all(pairs.map((p) => settle(p)))
    },
    afterRound: async () => {
      const after = await Promise.all(pairs.map((p) => settle(p)))
      after.forEach((counts, k) => {
        const sent = counts.reduce((a, b) => a + b, 0) - before[k]!.reduce((a, b) => a + b, 0)
        extra[k]!.push(((sent - settings.hedgePerRound) / settings.hedgePerRound) * 100)
      })
    },
  })
  for (const name of ['h-a1', 'h-a2', 'h-a3']) origins[name]!.setFaults({ tail: null })

  const n = settings.hedgePerRound
  const N = n * settings.rounds
  const p50 = samples.map((s) => roundPercentiles(s, 50))
  const p99 = samples.map((s) => roundPercentiles(s, 99))
  const p999 = samples.map((s) => percentile(pooled(s), 99.9))
  const p99pooled = samples.map((s) => percentile(pooled(s), 99))
  const [TAIL, CLEAN, AUTO, FIXED] = [0, 1, 2, 3]
  const autoVsClean = pairedRatio(p99[AUTO]!, p99[CLEAN]!)
  const fixedVsClean = pairedRatio(p99[FIXED]!, p99[CLEAN]!)
  const tailVsClean = pairedRatio(p99[TAIL]!, p99[CLEAN]!)
  const extraMed = extra.map(median)
  const extraRange = extra.map((e) => `${Math.min(...e).toFixed(1)}–${Math.max(...e).toFixed(1)}`)
  const markdown = [
    `Reads (GET) through \`proxy()\`; every variant has its own origins (bank app, \`latencyMs\` ${settings.originLatencyMs}), so origin request counts are per variant.`,
    `Calibration: fault-free median end to end ${ms(m)} ms; the tail origins get \`tail: { p: ${TAIL_P}, ms: ${tailMs}, seed: ${SEED} }\` (a tail request ≈ ${ms(m + tailMs)} ms ≈ 10× the median). The three tail origins use the same seed and each sees one request per client request, so the same requests are slow in every variant.`,
    `Single-origin variants use \`strategy: 'failover'\` with one origin (no hedging). Hedged: two origins, the tail one preferred, \`maxAttempts\` 3 (default).`,
    `${settings.rounds} rounds × ${n} requests per variant. p50 and p99: per round, median of rounds (each round's p99 rests on the ${tailCount(n, 99)} slowest of ${n}); pooled p99 and p99.9: over all ${N} samples (resting on the ${tailCount(N, 99)} and the ${tailCount(N, 99.9)} slowest). A round's p99 is sensitive to a few machine hiccups; the pooled p99 is the steadier cross-check.`,
    '',
    ...table(
      ['variant', 'p50 ms', 'p99 ms', 'p99 ms (pooled)', 'p99.9 ms (pooled)', 'p99 ÷ fault-free p99', 'extra origin requests'],
      variants.map((v, j) => [
        v.name,
        ms(median(p50[j]!)),
        ms(median(p99[j]!)),
        ms(p99pooled[j]!),
        ms(p999[j]!),
        pairedRatio(p99[j]!, p99[CLEAN]!).median.toFixed(2),
        j === AUTO ? `${extraMed[0]!.toFixed(1)}% (${extraRange[0]})` : j === FIXED ? `${extraMed[1]!.toFixed(1)}% (${extraRange[1]})` : '0 (one origin)',
      ]),
    ),
    '',
    ...table(
      ['ratio (per round, median of rounds)', 'value', 'target'],
      [
        ['single origin with tail: p99 ÷ fault-free p99', fmtRatio(tailVsClean, 2), '(the problem)'],
        ["hedged 'auto': p99 ÷ fault-free p99", fmtRatio(autoVsClean, 2), '≤ 1.3'],
        [`hedged ${fixedMs} ms: p99 ÷ fault-free p99`, fmtRatio(fixedVsClean, 2), '≤ 1.3'],
        ["hedged 'auto': extra origin requests", `${extraMed[0]!.toFixed(1)}% (rounds: ${extraRange[0]})`, '≤ 10%'],
        [`hedged ${fixedMs} ms: extra origin requests`, `${extraMed[1]!.toFixed(1)}% (rounds: ${extraRange[1]})`, '≤ 10%'],
      ],
    ),
  ]
  const both = (r: { median: number }, e: number) => (verdict(r.median, 1.3) === 'met' && e <= 10 ? 'met' : 'missed')
  return {
    title: '3. Hedged vs single-origin reads',
    markdown,
    headline: [
      { what: "3. hedged ('auto') p99 ÷ fault-free p99; extra requests", value: `${fmtRatio(autoVsClean, 2)}; +${extraMed[0]!.toFixed(1)}%`, target: '≤ 1.3; ≤ 10%', verdict: both(autoVsClean, extraMed[0]!) },
      { what: `3. hedged (${fixedMs} ms) p99 ÷ fault-free p99; extra requests`, value: `${fmtRatio(fixedVsClean, 2)}; +${extraMed[1]!.toFixed(1)}%`, target: '≤ 1.3; ≤ 10%', verdict: both(fixedVsClean, extraMed[1]!) },
    ],
  }
}
