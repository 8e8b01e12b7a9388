/**
 * `npm run bench:profile`: where the Worker's JavaScript time goes for one
 * variant (a diagnostic; the variants are bench/lib/diagnostic.ts's). Starts `wrangler dev` with
 * bench/wrangler.toml, takes a V8 CPU profile of the workerd that runs the
 * Worker and its objects (its inspector) over BENCH_REQUESTS requests, and
 * prints the functions with the most self time, and the most total time.
 *
 * Knobs: BENCH_VARIANT (default "obj"), BENCH_REQUESTS (default 1000), BENCH_TOP (default 40),
 * BENCH_PROFILE_OUT (write the .cpuprofile there, for DevTools, and the bundle its line numbers refer to beside it,
 * as `<file>.worker.js`), BENCH_INSPECTOR_PORT (default 9229, wrangler's).
 */
import { copyFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startDiagnostic } from './lib/diagnostic.js'
import { table } from './lib/stats.js'

const variant = process.env.BENCH_VARIANT ?? 'obj'
const requests = Number(process.env.BENCH_REQUESTS ?? 1000)
const top = Number(process.env.BENCH_TOP ?? 40)

const bench = await startDiagnostic('profile')
const send = bench.variant(variant, 'BENCH_VARIANT')

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[] }

try {
  for (let i = 0; i < 200; i++) await send(i, -1)
  // wrangler's inspector proxy (default port 9229) forwards to the workerd that runs the Worker.
  const targets = (await (await fetch(`http://127.0.0.1:${process.env.BENCH_INSPECTOR_PORT ?? 9229}/json/list`)).json()) as { webSocketDebuggerUrl: string }[]
  // The proxy accepts only connections that say their Origin (undici's WebSocket takes headers).
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl, { headers: { origin: 'http://localhost' } } as unknown as string[])
  await new Promise((resolve, reject) => ((ws.onopen = resolve), (ws.onerror = reject)))
  let id = 0
  const pending = new Map<number, (v: unknown) => void>()
  ws.onmessage = (e) => {
    const msg = JSON.parse(String(e.data)) as { id?: number; result?: unknown }
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result)
  }
  const cdp = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve) => {
      pending.set(++id, resolve)
      ws.send(JSON.stringify({ id, method, params }))
    })
  await cdp('Profiler.enable')
  await cdp('Profiler.setSamplingInterval', { interval: 50 })
  await cdp('Profiler.start')
  const started = performance.now()
  for (let i = 0; i < requests; i++) await send(i, 0)
  const wall = (performance.now() - started) / requests
  const { profile } = (await cdp('Profiler.stop')) as { profile: Profile }
  ws.close()
  if (process.env.BENCH_PROFILE_OUT) {
    writeFileSync(process.env.BENCH_PROFILE_OUT, JSON.stringify(profile))
    // The bundle the profile's line numbers refer to (wrangler deletes it when it stops).
    for (const dir of readdirSync('bench/.wrangler/tmp')) {
      const bundle = join('bench/.wrangler/tmp', dir, 'worker.js')
      if (existsSync(bundle)) copyFileSync(bundle, `${process.env.BENCH_PROFILE_OUT}.worker.js`)
    }
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const self = new Map<number, number>()
  profile.samples.forEach((s, i) => self.set(s, (self.get(s) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const name = (n: Node) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`
  const selfBy = new Map<string, number>()
  const totalBy = new Map<string, number>()
  for (const [nodeId, us] of self) {
    const n = byId.get(nodeId)!
    selfBy.set(name(n), (selfBy.get(name(n)) ?? 0) + us)
    const seen = new Set<string>()
    for (let p: number | undefined = nodeId; p !== undefined; p = parent.get(p)) {
      const k = name(byId.get(p)!)
      if (seen.has(k)) continue
      seen.add(k)
      totalBy.set(k, (totalBy.get(k) ?? 0) + us)
    }
  }
  const all = [...self.values()].reduce((a, b) => a + b, 0)
  const idle = [...self].filter(([n]) => byId.get(n)!.callFrame.functionName === '(idle)').reduce((a, [, us]) => a + us, 0)
  const per = (us: number) => (us / requests / 1000).toFixed(3)
  console.log(`\n${variant}: ${requests} requests, wall ${wall.toFixed(2)} ms each; profiled JS busy ${per(all - idle)} ms per request\n`)
  const rows = (m: Map<string, number>) => [...m].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) => [k, per(us)])
  console.log(table(['self', 'ms per request'], rows(selfBy)).join('\n'))
  console.log('')
  console.log(table(['total', 'ms per request'], rows(totalBy)).join('\n'))
} finally {
  await bench.stop()
}
