/** Section 5: admit throughput at 32 in flight against the two-write floor, and the shards a target rate needs. */
import type { BenchContext, SectionResult } from '../lib/context.js'
import { keepAlive, timed } from '../lib/http.js'
import { progress } from '../lib/progress.js'
import { fmtRatio, median, ms, pairedRatio, percentile, table } from '../lib/stats.js'

const BODY = '{"amount":100}'
const IN_FLIGHT = 32
/** The rate the shard estimate is for, new keys per second. */
const TARGET_RATE = 5000
/** Cloudflare's documented soft limit for a Durable Object whose requests write storage (DESIGN §9: 200–500/s). */
const DOC_WRITES_PER_OBJECT = 500
/** One measuring slice, and the part of it not counted while the pipeline fills. */
const SLICE_MS = 500
const RAMP_MS = 200

export async function throughputSection(ctx: BenchContext): Promise<SectionResult> {
  const { base, runId: run, settings } = ctx
  const agent = keepAlive(IN_FLIGHT)
  const variants = [
    { name: 'plain Hono handler', path: '/plain', keyed: false },
    { name: 'floor: handler + 2 durable DO writes (one object)', path: '/floor', keyed: true },
    { name: 'once(), new key (one object, shards: 1)', path: '/once', keyed: true },
    { name: 'diagnostic: once({ answerFirst: false }), new key', path: '/once-commit-first', keyed: true },
  ]
  let seq = 0
  /**
   * One slice: IN_FLIGHT senders for `SLICE_MS`; completions are counted in
   * the window after the first `RAMP_MS` (when the pipeline is full) until
   * the senders stop, so neither the ramp-up nor the drain is counted.
   */
  const slice = async (v: (typeof variants)[number], label: string) => {
    const done: number[] = []
    const lat: number[] = []
    const started = performance.now()
    const end = started + SLICE_MS
    const sender = async () => {
      while (performance.now() < end) {
        const key = v.keyed ? `"t-${run}-${seq++}"` : undefined
        lat.push(await timed(base, agent, { method: 'POST', path: v.path, body: BODY, headers: { 'idempotency-key': key }, expect: 201 }))
        done.push(performance.now())
      }
    }
    const ticker = setInterval(() => progress(`${label} · ${lat.length} requests`), 250)
    await Promise.all(Array.from({ length: IN_FLIGHT }, sender))
    clearInterval(ticker)
    const from = started + RAMP_MS
    return { count: done.filter((t) => t >= from && t <= end).length, seconds: (end - from) / 1000, lat }
  }

  try {
    for (const v of variants) await slice(v, '5/6 throughput · warm-up')
    const slices = Math.max(1, Math.round(settings.throughputMs / SLICE_MS))
    const rates = variants.map(() => [] as number[])
    const p50 = variants.map(() => [] as number[])
    const p99 = variants.map(() => [] as number[])
    for (let round = 0; round < settings.rounds; round++) {
      // Short slices, the variants alternating (and the first one rotating), so a noisy second hits them alike.
      const acc = variants.map(() => ({ count: 0, seconds: 0, lat: [] as number[] }))
      for (let sl = 0; sl < slices; sl++) {
        for (let j = 0; j < variants.length; j++) {
          const k = (round + sl + j) % variants.length
          const r = await slice(variants[k]!, `5/6 throughput · round ${round + 1}/${settings.rounds} · slice ${sl + 1}/${slices} · ${variants[k]!.name}`)
          acc[k]!.count += r.count
          acc[k]!.seconds += r.seconds
          acc[k]!.lat.push(...r.lat)
        }
      }
      acc.forEach((a, k) => {
        rates[k]!.push(a.count / a.seconds)
        p50[k]!.push(median(a.lat))
        p99[k]!.push(percentile(a.lat, 99))
      })
    }
    const [PLAIN, FLOOR, ONCE, COMMIT_FIRST] = [0, 1, 2, 3]
    const rate = rates.map(median)
    const onceVsFloor = pairedRatio(rates[ONCE]!, rates[FLOOR]!)
    const perKeyMs = 1000 / rate[ONCE]!
    const shardsMeasured = Math.ceil(TARGET_RATE / rate[ONCE]!)
    const perObjectDoc = DOC_WRITES_PER_OBJECT / 2 // an admit and a commit each write
    const shardsDoc = Math.ceil(TARGET_RATE / perObjectDoc)
    const markdown = [
      `${IN_FLIGHT} requests in flight over ${IN_FLIGHT} kept-alive connections; per round ${Math.max(1, Math.round(settings.throughputMs / SLICE_MS))} slices of ${SLICE_MS} ms per variant, the variants alternating slice by slice; ${settings.rounds} rounds. Rate = requests completed in each slice after its first ${RAMP_MS} ms (pipeline full) until the senders stop ÷ that time, summed over the round's slices.`,
      '',
      ...table(
        ['variant', 'requests/s', 'per round', 'p50 ms', 'p99 ms', '× floor rate'],
        variants.map((v, j) => [v.name, rate[j]!.toFixed(0), rates[j]!.map((x) => x.toFixed(0)).join(', '), ms(median(p50[j]!)), ms(median(p99[j]!)), pairedRatio(rates[j]!, rates[FLOOR]!).median.toFixed(2)]),
      ),
      '',
      ...table(
        ['ratio (per round, median of rounds)', 'value', 'target'],
        [
          ['once() new keys/s ÷ floor requests/s', fmtRatio(onceVsFloor), '(1.0 = no cost beyond the two writes)'],
          ['diagnostic: once({ answerFirst: false }) new keys/s ÷ floor requests/s', fmtRatio(pairedRatio(rates[COMMIT_FIRST]!, rates[FLOOR]!)), ''],
          ['plain requests/s ÷ floor requests/s', fmtRatio(pairedRatio(rates[PLAIN]!, rates[FLOOR]!)), '(the Worker alone)'],
        ],
      ),
      '',
      `**Shards.** One local workerd runs the Worker and every object on one machine, so adding shards here cannot show scaling; the shard count is derived from the per-object cost instead.`,
      `Here one object admitted and committed ${rate[ONCE]!.toFixed(0)} new keys/s (${ms(perKeyMs)} ms of the whole process per key, two writes each); that is a floor on what one object does alone, since the Worker's own work shares the same process.`,
      `- from this measurement: ${TARGET_RATE.toLocaleString('en-US')} new keys/s needs ⌈${TARGET_RATE} ÷ ${rate[ONCE]!.toFixed(0)}⌉ = **${shardsMeasured}** shard(s);`,
      `- from Cloudflare's documented soft limit (≈${DOC_WRITES_PER_OBJECT} storage-writing requests/s per object, two per key → ${perObjectDoc} keys/s): **${shardsDoc}** shards.`,
      `Set \`once({ shards })\` to the larger of the two (${Math.max(shardsMeasured, shardsDoc)} for ${TARGET_RATE.toLocaleString('en-US')}/s), with headroom; ordered domains cannot be sharded and are bounded by one object each.`,
    ]
    return {
      title: '5. Admit throughput at 32 in flight',
      markdown,
      headline: [
        { what: `5. once() new keys/s ÷ floor at ${IN_FLIGHT} in flight`, value: fmtRatio(onceVsFloor), target: '(1.0 = the floor)', verdict: '' },
        { what: `5. shards for ${TARGET_RATE.toLocaleString('en-US')} new keys/s (measured / documented limit)`, value: `${shardsMeasured} / ${shardsDoc} (one object: ${rate[ONCE]!.toFixed(0)} keys/s here)`, target: '', verdict: '' },
      ],
    }
  } finally {
    agent.destroy()
  }
}
