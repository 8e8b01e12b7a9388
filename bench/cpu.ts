/**
 * `npm run bench:cpu`: where a request's CPU goes under `wrangler dev`, by
 * process, for the variants of sections 1 and 7 (a diagnostic; the published
 * numbers are `npm run bench`'s latencies).
 *
 * Variants run in blocks of BENCH_REQUESTS sequential requests (default 300),
 * BENCH_ROUNDS blocks each (default 8), their order reversed every other
 * block. Around each block it reads the user and system CPU time
 * (`/proc/<pid>/stat`, 10 ms ticks) of every process `wrangler dev` started:
 * wrangler's Node process, the workerd that proxies requests in, and the
 * workerd that runs the Worker and its Durable Objects (the one with the
 * inspector). It prints the median CPU ms per request of each, the wall ms,
 * and the per-block ratios of `once()` ÷ the two-write floor and of the
 * method call ÷ the plain RPC, for CPU and for wall time.
 *
 * Knobs: BENCH_VARIANTS (default "floor,once,rpc,call"; also "plain", "obj", "replay": bench/lib/diagnostic.ts).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { startDiagnostic } from './lib/diagnostic.js'
import { median, table } from './lib/stats.js'

const rounds = Number(process.env.BENCH_ROUNDS ?? 8)
const perRound = Number(process.env.BENCH_REQUESTS ?? 300)
const names = (process.env.BENCH_VARIANTS ?? 'floor,once,rpc,call').split(',').map((s) => s.trim())

const bench = await startDiagnostic('cpu')
const variants = Object.fromEntries(names.map((n) => [n, bench.variant(n, 'BENCH_VARIANTS')]))
const dev = bench.dev

/** The processes under `pid`, with a short label each. */
function tree(pid: number): { pid: number; label: string }[] {
  const parent = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {
      // gone meanwhile
    }
  }
  const found: { pid: number; label: string }[] = []
  const visit = (p: number) => {
    for (const [child, of] of parent) {
      if (of !== p) continue
      const args = readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0')
      const label = !args[0]!.endsWith('workerd') ? (args.some((a) => a.includes('wrangler-dist')) ? 'wrangler (node)' : '') : args.some((a) => a.startsWith('--inspector-addr')) ? 'workerd: Worker + objects' : 'workerd: proxy'
      if (label) found.push({ pid: child, label })
      visit(child)
    }
  }
  visit(pid)
  return found
}

/** CPU seconds ×1000 (user + system) of `pid` so far. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

const procs = tree(dev.process.pid ?? 0)
const cpu = new Map(names.map((n) => [n, procs.map(() => [] as number[])]))
const wall = new Map(names.map((n) => [n, [] as number[]]))
try {
  for (const n of names) for (let i = 0; i < 100; i++) await variants[n]!(i, -1)
  for (let round = 0; round < rounds; round++) {
    for (const n of round % 2 ? [...names].reverse() : names) {
      const before = procs.map((p) => cpuMs(p.pid))
      const started = performance.now()
      for (let i = 0; i < perRound; i++) await variants[n]!(i, round)
      wall.get(n)!.push((performance.now() - started) / perRound)
      procs.forEach((p, k) => cpu.get(n)![k]!.push((cpuMs(p.pid) - before[k]!) / perRound))
    }
    process.stderr.write(`\rround ${round + 1}/${rounds}`)
  }
} finally {
  await bench.stop()
}
const total = (n: string) => cpu.get(n)![0]!.map((_, r) => cpu.get(n)!.reduce((s, per) => s + per[r]!, 0))
console.log(`\n\n${rounds} blocks × ${perRound} requests per variant; CPU ms per request (median of blocks), by process\n`)
console.log(table(['variant', ...procs.map((p) => p.label), 'all', 'wall ms'], names.map((n) => [n, ...cpu.get(n)!.map((per) => median(per).toFixed(2)), median(total(n)).toFixed(2), median(wall.get(n)!).toFixed(2)])).join('\n'))
const ratio = (a: string, b: string) => {
  if (!names.includes(a) || !names.includes(b)) return
  const of = (xs: number[], ys: number[]) => {
    const rs = xs.map((x, r) => x / ys[r]!)
    return `${median(rs).toFixed(3)} (${Math.min(...rs).toFixed(3)}–${Math.max(...rs).toFixed(3)})`
  }
  const user = procs.findIndex((p) => p.label.includes('Worker'))
  console.log(`${a} ÷ ${b}: CPU ${of(total(a), total(b))}, the Worker's process ${of(cpu.get(a)![user]!, cpu.get(b)![user]!)}, wall ${of(wall.get(a)!, wall.get(b)!)}`)
}
console.log('')
ratio('once', 'floor')
ratio('call', 'rpc')
ratio('obj', 'rpc')
