/**
 * `npm run bench`: the benchmark suite (issue 12), measured side by side in
 * one run against `wrangler dev` (workerd, real SQLite-backed Durable
 * Objects) and real Node origins (examples/origin/server.ts) on loopback.
 *
 *   1. once() overhead vs the same plain handler, new key and replay, against the two-write floor
 *   2. once() + proxy() to one healthy origin vs the same call made by hand plus the two-write floor
 *   3. hedged vs single-origin reads with a 5% tail at 10× the median: p50/p99/p99.9, extra origin requests
 *   4. replicate ackQuorum 1 / majority / all vs a single-origin write; messages per replica per request
 *   5. throughput at 32 in flight vs the floor, and the shards a target rate needs
 *   6. a peer from npm (@node-idempotency/core) against its own plain handler on Node
 *   7. state in a Durable Object: onceObject() against a plain RPC to the object and once() around it (issue 19)
 *
 * Within a section, variants are interleaved request by request so machine
 * noise hits them alike; ratios are taken per round, then the median over
 * rounds. Results are printed and written to bench/results.md.
 *
 * Knobs (environment): BENCH_ROUNDS (default 5), BENCH_REQUESTS (per
 * variant per round, default 300), BENCH_HEDGE_REQUESTS (default 500),
 * BENCH_THROUGHPUT_MS (section 5's measuring time per variant per round, default 1500), BENCH_ORIGIN_LATENCY_MS
 * (hedge origins, default 5), BENCH_SECTIONS (e.g. "1,3"; default all),
 * BENCH_OUT (default bench/results.md).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { type RunningOrigin, startOrigin } from '../examples/origin/server.js'
import { startWranglerDev } from '../scripts/wrangler-dev.js'
import type { BenchContext, HeadlineRow, SectionResult, Settings } from './lib/context.js'
import { keepAlive } from './lib/http.js'
import { describeMachine } from './lib/machine.js'
import { done, log, progress, secondsSinceStart } from './lib/progress.js'
import { table } from './lib/stats.js'
import { hedgeSection } from './sections/hedge.js'
import { onceObjectSection } from './sections/once-object.js'
import { overhead } from './sections/overhead.js'
import { peerSection } from './sections/peer.js'
import { proxySection } from './sections/proxy.js'
import { replicaNames, replicateSection } from './sections/replicate.js'
import { throughputSection } from './sections/throughput.js'

const num = (name: string, fallback: number, min = 1) => {
  const v = Number(process.env[name] ?? fallback)
  if (!Number.isFinite(v) || v < min) throw new Error(`${name} must be a number ≥ ${min}`)
  return Math.floor(v)
}
const settings: Settings = {
  rounds: num('BENCH_ROUNDS', 5),
  perRound: num('BENCH_REQUESTS', 300),
  hedgePerRound: num('BENCH_HEDGE_REQUESTS', 500),
  throughputMs: num('BENCH_THROUGHPUT_MS', 1500, 100),
  originLatencyMs: num('BENCH_ORIGIN_LATENCY_MS', 5, 0),
  sections: new Set((process.env.BENCH_SECTIONS ?? '1,2,3,4,5,6,7').split(',').map((s) => Number(s.trim()))),
}
const out = process.env.BENCH_OUT ?? 'bench/results.md'
const machine = describeMachine()

// Origins, all on 127.0.0.1 in this process (each request's origin work is awaited by the single client, so they do not compete).
progress('starting origins', true)
const originSpecs: { name: string; latencyMs: number }[] = [
  { name: 'p', latencyMs: 0 },
  ...['h-a1', 'h-b1', 'h-a2', 'h-b2', 'h-a3', 'h-b3'].map((name) => ({ name, latencyMs: settings.originLatencyMs })),
  { name: 'w-1', latencyMs: 0 },
  { name: 'r-one', latencyMs: 0 },
  ...['1', 'majority', 'all', 'down'].flatMap((q) => replicaNames(q).map((name) => ({ name, latencyMs: 0 }))),
]
// Every variant signs (RFC 9421, DESIGN §6), the by-hand baseline too, and every origin requires it.
const signingSecret = `bench-${crypto.randomUUID()}`
const origins: Record<string, RunningOrigin> = {}
for (const spec of originSpecs) origins[spec.name] = await startOrigin({ ...spec, secrets: { ONCE_SIGNING_SECRET: signingSecret } })

progress('starting wrangler dev', true)
const persistTo = mkdtempSync(join(tmpdir(), 'hono-once-bench-'))
const agent = keepAlive(1)
const closeAll = async () => {
  agent.destroy()
  await Promise.all(Object.values(origins).map((o) => o.close()))
  rmSync(persistTo, { recursive: true, force: true })
}
let dev: Awaited<ReturnType<typeof startWranglerDev>>
try {
  dev = await startWranglerDev({
    config: 'bench/wrangler.toml',
    persistTo,
    vars: { BENCH_ORIGINS: JSON.stringify(Object.fromEntries(Object.entries(origins).map(([n, o]) => [n, o.url]))) },
    secrets: { ONCE_SIGNING_SECRET: signingSecret },
  })
} catch (err) {
  await closeAll()
  throw err
}
const ctx: BenchContext = { settings, base: new URL(dev.url), agent, origins, runId: Date.now().toString(36), results: new Map() }

const sections: [number, string, (ctx: BenchContext) => Promise<SectionResult | string>][] = [
  [1, '1. once() overhead', overhead],
  [2, '2. once() + proxy() to one healthy origin', proxySection],
  [3, '3. Hedged vs single-origin reads', hedgeSection],
  [4, '4. Replicate vs single-origin writes', replicateSection],
  [5, '5. Admit throughput at 32 in flight', throughputSection],
  [6, '6. A peer from npm: @node-idempotency/core', peerSection],
  [7, '7. State in a Durable Object: onceObject()', onceObjectSection],
]
const body: string[] = []
const headline: HeadlineRow[] = []
let failed = false
try {
  for (const [n, title, run] of sections) {
    if (!settings.sections.has(n)) continue
    const started = secondsSinceStart()
    progress(`${n}/${sections.length} ${title.slice(3)}`, true)
    let result: SectionResult | string
    try {
      result = await run(ctx)
    } catch (err) {
      failed = true
      result = `failed: ${err instanceof Error ? err.message : String(err)}`
    }
    const took = `(${Math.round(secondsSinceStart() - started)} s)`
    if (typeof result === 'string') {
      log(`\n## ${title}\n\n${result} ${took}`)
      body.push(`## ${title}`, '', `${result}`, '')
      headline.push({ what: title, value: `${result.split(' (')[0]} (see section ${n})`, target: '', verdict: 'skipped' })
      continue
    }
    ctx.results.set(n, result)
    headline.push(...result.headline)
    body.push(`## ${result.title}`, '', ...result.markdown, '', `_Section time: ${took.slice(1, -1)}._`, '')
    log(`\n## ${result.title} ${took}\n\n${result.markdown.join('\n')}`)
  }
} finally {
  done()
  await dev.stop()
  await closeAll()
}

const total = Math.round(secondsSinceStart())
const lines = [
  '# Benchmark results',
  '',
  `Measured by \`npm run bench\` (bench/run.ts) in ${Math.floor(total / 60)} min ${total % 60} s: hono-once under \`wrangler dev\` (workerd, local SQLite-backed Durable Objects), origins from examples/origin/server.ts (bank app, \`onceReceiver\`, node:sqlite in memory), one client, everything on 127.0.0.1.`,
  `Variants of a section are interleaved request by request (their order rotating), so machine noise hits them alike; latencies are medians of per-round values, ratios are computed per round and then the median over rounds is given with the range of rounds. The machine is shared and noisy: compare ratios, not absolute milliseconds.`,
  `Settings: ${settings.rounds} rounds; ${settings.perRound} requests per variant per round (sections 1, 2, 4, 6), ${settings.hedgePerRound} in section 3; ${settings.throughputMs} ms of throughput slices per variant per round in section 5.`,
  '',
  '## Machine',
  '',
  ...machine,
  `- load average at the end (1/5/15 min): ${loadavg().map((x) => x.toFixed(2)).join(' / ')} (other work on the machine shows here)`,
  '',
  '## Summary',
  '',
  ...table(
    ['measure', 'value (median of rounds, range)', 'target', ''],
    headline.map((h) => [h.what, h.value, h.target, h.verdict]),
    ['l', 'l', 'l', 'l'],
  ),
  '',
  ...body,
]
writeFileSync(out, lines.join('\n'))
console.log(`\n## Summary\n\n${table(['measure', 'value', 'target', ''], headline.map((h) => [h.what, h.value, h.target, h.verdict]), ['l', 'l', 'l', 'l']).join('\n')}`)
console.log(`\nWrote ${out} in ${Math.floor(total / 60)} min ${total % 60} s.`)
if (failed) process.exitCode = 1
