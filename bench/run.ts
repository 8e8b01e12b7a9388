/**
 * `npm run bench`: latency of the same handler with and without once(),
 * measured side by side in one run against `wrangler dev` (workerd, real
 * SQLite-backed Durable Objects), over loopback HTTP.
 *
 * Variants are interleaved request by request so machine noise hits them
 * alike; each round reports medians, and the table gives the median of the
 * rounds. Results go to bench/results.md.
 */
import { writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { startWranglerDev } from '../scripts/wrangler-dev.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7)
const PER_ROUND = Number(process.env.BENCH_REQUESTS ?? 300)
const agent = new Agent({ keepAlive: true, maxSockets: 1 })

type Variant = { name: string; path: string; key: (i: number, round: number) => string | undefined }
const run = Date.now().toString(36)
const variants: Variant[] = [
  { name: 'plain Hono handler', path: '/plain', key: () => undefined },
  { name: 'floor: handler + 2 durable DO writes', path: '/floor', key: (i, r) => `f-${run}-${r}-${i}` },
  { name: 'once(), new key', path: '/once', key: (i, r) => `n-${run}-${r}-${i}` },
  { name: 'once(), replay (isolate cache)', path: '/once', key: () => `replay-${run}` },
  { name: 'once(), replay (from the object)', path: '/once-nocache', key: () => `replay-nc-${run}` },
]

/** One POST over a kept-alive loopback connection; returns milliseconds. */
function time(base: URL, path: string, key: string | undefined): Promise<number> {
  const body = '{"amount":100}'
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const req = request(
      { host: base.hostname, port: base.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length, ...(key ? { 'idempotency-key': `"${key}"` } : {}) } },
      (res) => {
        res.resume()
        res.on('end', () => (res.statusCode === 201 ? resolve(Number(process.hrtime.bigint() - started) / 1e6) : reject(new Error(`${path}: ${res.statusCode}`))))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!

const dev = await startWranglerDev({ config: 'bench/wrangler.toml' })
try {
  const base = new URL(dev.url)
  // Warm-up: isolates, objects, SQLite files, and the two replay keys committed.
  for (let i = 0; i < 100; i++) for (const v of variants) await time(base, v.path, v.key(i, -1))

  const medians = variants.map(() => [] as number[])
  const p99s = variants.map(() => [] as number[])
  for (let round = 0; round < ROUNDS; round++) {
    const samples = variants.map(() => [] as number[])
    for (let i = 0; i < PER_ROUND; i++) {
      for (const [j, v] of variants.entries()) samples[j]!.push(await time(base, v.path, v.key(i, round)))
    }
    samples.forEach((s, j) => {
      medians[j]!.push(median(s))
      p99s[j]!.push(pct(s, 99))
    })
    console.log(`round ${round + 1}/${ROUNDS}: ` + variants.map((v, j) => `${v.name} ${median(samples[j]!).toFixed(3)} ms`).join(' | '))
  }

  const m = medians.map(median)
  const [plain, , fresh, cached] = m as [number, number, number, number, number]
  // Ratios are paired within a round (same minutes, same noise), then the median over rounds is taken.
  const ratio = (a: number, b: number) => {
    const rs = medians[a]!.map((x, r) => x / medians[b]![r]!)
    return `${median(rs).toFixed(3)} (rounds: ${Math.min(...rs).toFixed(3)}–${Math.max(...rs).toFixed(3)})`
  }
  const lines = [
    '# Benchmark results',
    '',
    `Measured by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: \`wrangler dev\` (workerd, local SQLite-backed Durable Objects), one`,
    `client over kept-alive loopback HTTP, variants interleaved request by request; ${ROUNDS} rounds × ${PER_ROUND} requests per variant.`,
    'Latency is the median of the per-round medians (p99: median of the per-round p99s). Machine: 2 cores, noisy; compare ratios, not absolutes.',
    '',
    '| variant | median ms | p99 ms | × plain |',
    '|---|---:|---:|---:|',
    ...variants.map((v, j) => `| ${v.name} | ${m[j]!.toFixed(3)} | ${median(p99s[j]!).toFixed(3)} | ${(m[j]! / plain).toFixed(2)} |`),
    '',
    'Ratios: per round, then the median over rounds (range in brackets).',
    '',
    '| ratio | value | target |',
    '|---|---:|---|',
    `| once() new key ÷ floor (2 durable DO round trips) | ${ratio(2, 1)} | ≤ 1.05 |`,
    `| once() new key ÷ plain | ${ratio(2, 0)} | ~1.7 locally |`,
    `| once() replay (isolate cache) ÷ plain | ${ratio(3, 0)} | ≤ 1.10 |`,
    `| once() replay from the object ÷ plain | ${ratio(4, 0)} | one DO round trip |`,
    `| added latency, new key | ${(fresh - plain).toFixed(3)} ms | |`,
    `| added latency, replay (cache) | ${(cached - plain).toFixed(3)} ms | |`,
    '',
  ]
  writeFileSync('bench/results.md', lines.join('\n'))
  console.log('\n' + lines.join('\n'))
} finally {
  agent.destroy()
  await dev.stop()
}
