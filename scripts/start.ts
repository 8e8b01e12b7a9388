/**
 * `npm start`: the multi-region demo. Three local "regions" (eu, us, ap:
 * the bank origin of examples/origin on node:sqlite, each with its own
 * database under .wrangler/demo and its own latency) behind the hono-once
 * gateway under `wrangler dev` on 127.0.0.1:8787 (`PORT` overrides; the
 * regions listen on the three ports after it). It prints the URLs and curl
 * lines to try, then one line per request. Ctrl-C stops everything.
 *
 *   npm start                    serve until Ctrl-C
 *   npm start -- --tour          run the scripted tour first, then serve
 *   npm start -- --demo-only     run the scripted tour and exit (status 0 when it went as promised)
 *
 * @module
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEMO_LOG_PREFIX as LOG_PREFIX, type DemoControlLine, type DemoLogLine } from '../examples/demo/log.js'
import { runDemo } from '../examples/demo/run.js'
import type { RunningOrigin } from '../examples/origin/server.js'
import { isMain } from '../examples/origin/is-main.js'
import { startWranglerDev, type DevServer } from './wrangler-dev.js'

/** The regions, in the gateway's order of preference, with their artificial latency. */
export const REGIONS = [
  { name: 'eu', latencyMs: 5 },
  { name: 'us', latencyMs: 40 },
  { name: 'ap', latencyMs: 90 },
] as const

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))

/** How to start the demo. */
export interface DemoOptions {
  /** The gateway's port. Default `PORT` or 8787. */
  port?: number
  /** The regions' ports, in REGIONS order; 0 picks a free one. Default: the three ports after the gateway's. */
  originPorts?: [number, number, number]
  /** Where the regions' SQLite files and the stable area's state live. Default `ONCE_DEMO_DIR` or .wrangler/demo. */
  dataDir?: string
  /** Opens /__once/status. Default `ONCE_STATUS_TOKEN` or a random one. */
  statusToken?: string
  /** Where the live lines go (one per request through the gateway). Default console.log. */
  onLine?: (line: string) => void
  /** Bound on wrangler dev's start, ms. Default 60000. */
  timeoutMs?: number
}

/** A running demo. */
export interface RunningDemo {
  /** The gateway, e.g. http://127.0.0.1:8787 */
  url: string
  statusToken: string
  /** Opens the status page in a browser: the token rides in the fragment (never sent to the server), the page keeps it in sessionStorage. */
  statusUrl: string
  regions: RunningOrigin[]
  dev: DevServer
  /** The ONCE_CONFIG the gateway runs with. */
  config: object
  /** Every port the demo listens on. */
  ports: number[]
  /** The regions' databases and the stable area's state. */
  dataDir: string
  /** Stops wrangler dev (its whole process group) and the regions; idempotent. */
  stop(): Promise<void>
}

/**
 * The demo's gateway config: writes to an account are replicated to every
 * region in one order per account; reads are hedged.
 *
 * @param regions - name → URL, in order of preference
 * @returns the ONCE_CONFIG object
 * @example
 * demoConfig({ eu: 'http://127.0.0.1:8788' })
 */
export function demoConfig(regions: Record<string, string>): object {
  const breaker = { failures: 3, cooldownMs: 5000 }
  const write = (path: string) => ({ path, methods: ['POST'], strategy: 'replicate', domain: 'param:id', ackQuorum: 1, timeoutMs: 3000, deadlineMs: 8000, breaker })
  return {
    origins: Object.entries(regions).map(([name, url]) => ({ name, url })),
    routes: [write('/accounts/:id/deposits'), write('/accounts/:id/withdrawals'), { path: '/accounts/*', methods: ['GET'], strategy: 'hedge', hedgeAfterMs: 'auto', breaker }],
    // One local user: every caller shares the key space (a deployed gateway scopes keys by Authorization by default).
    keys: { ttlSeconds: 86400, leaseMs: 5000, waitMs: 10000, scope: 'none' },
  }
}

/**
 * Starts the three regions and the demo gateway under `wrangler dev`.
 *
 * @param options - ports, state directory, status token, where live lines go
 * @returns the running demo
 * @example
 * const demo = await startDemo({ port: 0, originPorts: [0, 0, 0], dataDir: tmp })
 * await demo.stop()
 */
export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const port = options.port ?? Number(process.env.PORT ?? 8787)
  const originPorts = options.originPorts ?? [port + 1, port + 2, port + 3]
  const dataDir = resolve(options.dataDir ?? process.env.ONCE_DEMO_DIR ?? join(ROOT, '.wrangler/demo'))
  const statusToken = options.statusToken ?? process.env.ONCE_STATUS_TOKEN ?? crypto.randomUUID().replaceAll('-', '')
  const onLine = options.onLine ?? ((line: string) => console.log(line))
  mkdirSync(dataDir, { recursive: true })
  // Signs every request the gateway forwards; the regions refuse unsigned ones.
  const secret = `demo-${crypto.randomUUID()}`

  // Imported here, after main() has quieted node:sqlite's ExperimentalWarning.
  const { startOrigin } = await import('../examples/origin/server.js')
  const regions: RunningOrigin[] = []
  let dev: DevServer | undefined
  let stopped: Promise<void> | undefined
  const stop = () =>
    (stopped ??= (async () => {
      await dev?.stop()
      // wrangler dev's whole process group (npx, wrangler, workerd), not only its leader, before we say it stopped.
      if (dev?.process.pid) await groupGone(dev.process.pid)
      await Promise.all(regions.map((r) => r.close().catch(() => undefined)))
    })())
  try {
    for (const [i, region] of REGIONS.entries()) {
      regions.push(await startOrigin({ name: region.name, port: originPorts[i], dbPath: join(dataDir, `${region.name}.db`), latencyMs: region.latencyMs, secrets: { ONCE_SIGNING_SECRET: secret } }))
    }
    const config = demoConfig(Object.fromEntries(regions.map((r) => [r.name, r.url])))
    dev = await startWranglerDev({
      config: join(ROOT, 'examples/demo/wrangler.toml'),
      ...(port === 0 ? {} : { port }),
      persistTo: join(dataDir, 'state'),
      timeoutMs: options.timeoutMs ?? 60_000,
      // wrangler splits --var on the first ':' only, so JSON with colons (URLs) arrives whole.
      vars: { ONCE_CONFIG: JSON.stringify(config) },
      // In a file only this user can read, not on wrangler's command line (where `ps` shows it to every local user).
      secrets: { ONCE_SIGNING_SECRET: secret, ONCE_STATUS_TOKEN: statusToken },
    })
    relayLiveLines(dev, onLine)
    const url = dev.url
    return {
      url,
      statusToken,
      statusUrl: `${url}/__once/status#token=${statusToken}`,
      regions,
      dev,
      config,
      ports: [Number(new URL(url).port), ...regions.map((r) => r.port)],
      dataDir,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** Waits (bounded) until no live process is left in the group; SIGKILLs what is left after `graceMs`. */
async function groupGone(pgid: number, graceMs = 5000): Promise<void> {
  for (const deadline of [Date.now() + graceMs, Date.now() + graceMs + 2000]) {
    while (Date.now() < deadline) {
      if (!groupAlive(pgid)) return
      await new Promise((r) => setTimeout(r, 50))
    }
    try {
      process.kill(-pgid, 'SIGKILL')
    } catch {
      return
    }
  }
}

/** Whether a process of the group is alive (zombies waiting for a reaper do not count, nor listen). */
function groupAlive(pgid: number): boolean {
  if (existsSync('/proc/self/stat')) {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
        const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true
      } catch {
        // gone meanwhile
      }
    }
    return false
  }
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

/** Turns the demo Worker's `once-demo {json}` lines in wrangler's output into live lines; passes on the gateway's warnings. */
function relayLiveLines(dev: DevServer, onLine: (line: string) => void): void {
  let pending = ''
  const onData = (chunk: Buffer) => {
    pending += chunk.toString()
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const raw of lines) {
      const line = raw.replace(/\x1b\[[0-9;]*m/g, '').trimEnd()
      const at = line.indexOf(LOG_PREFIX)
      if (at >= 0) {
        try {
          onLine(formatLine(JSON.parse(line.slice(at + LOG_PREFIX.length)) as DemoLogLine | DemoControlLine))
        } catch {
          onLine(line)
        }
      } else if (/hono-once|\[ERROR\]|Uncaught/.test(line)) onLine(`  ! ${line.trim()}`)
    }
  }
  dev.process.stdout?.on('data', onData)
  dev.process.stderr?.on('data', onData)
}

/**
 * One live line.
 *
 * @example
 * formatLine({ kind: 'request', method: 'POST', path: '/accounts/alice/deposits', key: 'dep-1', status: 201, origin: 'eu', replayed: false, sequence: '3', ms: 12 })
 * // '12:00:01.234  POST /accounts/alice/deposits  key=dep-1  → 201  eu  12 ms  #3'
 */
export function formatLine(line: DemoLogLine | DemoControlLine): string {
  const time = new Date().toISOString().slice(11, 23)
  if (line.kind === 'control') {
    const what = line.action === 'down' ? 'is DOWN (connections reset)' : line.action === 'slow' ? `is SLOW (${line.latencyMs} ms)` : `is UP (${line.latencyMs} ms)`
    return `${time}  ── region ${line.region} ${what}`
  }
  const request = `${line.method.padEnd(4)} ${line.path}`.padEnd(34)
  const key = (line.key === null ? '' : `key=${line.key}`).padEnd(18)
  const origin = (line.origin ?? '-').padEnd(2)
  const extra = [line.replayed ? 'replayed' : '', line.sequence ? `seq ${line.sequence}` : ''].filter(Boolean).join(', ')
  return `${time}  ${request} ${key} → ${line.status}  ${origin} ${String(line.ms).padStart(5)} ms${extra ? `  ${extra}` : ''}`
}

/** What `npm start` prints before the live lines. */
export function banner(demo: RunningDemo): string {
  const u = demo.url
  const json = `-H 'content-type: application/json'`
  return `
hono-once multi-region demo
  gateway      ${u}   (examples/demo/worker.ts: the gateway of src/gateway.ts + /__demo routes)
  status page  ${demo.statusUrl}
${demo.regions.map((r) => `  region ${r.name.padEnd(5)} ${r.url}   (${REGIONS.find((x) => x.name === r.name)?.latencyMs} ms, ${r.name}.db)`).join('\n')}

Writes (POST /accounts/:id/deposits|withdrawals) are replicated to every region in one order per
account and answered by the first region that applied them; reads (GET /accounts/:id) are hedged.

Try:
  # a deposit with an Idempotency-Key; run it again: the same answer, Idempotent-Replayed: true
  curl -i -X POST ${u}/accounts/alice/deposits ${json} -H 'Idempotency-Key: "dep-1"' -d '{"amount":100}'
  # the balance (Once-Origin says which region answered)
  curl -i ${u}/accounts/alice
  # take eu down: writes are answered by us, reads fail over; eu falls behind
  curl -X POST ${u}/__demo/regions/eu/down
  curl -i -X POST ${u}/accounts/alice/deposits ${json} -H 'Idempotency-Key: "dep-2"' -d '{"amount":50}'
  curl ${u}/__demo/accounts/alice        # each region's own balance
  # bring it back: the gateway's stable area feeds eu what it missed, in order
  curl -X POST ${u}/__demo/regions/eu/up
  # make a region slow (ms, default 800): reads are hedged to the next one
  curl -X POST '${u}/__demo/regions/eu/slow?ms=800'
  # the status page: open ${demo.statusUrl} in a browser, or
  curl -H 'Authorization: Bearer ${demo.statusToken}' ${u}/__once/status

Ctrl-C stops everything. Live requests:`
}

async function main(): Promise<void> {
  // node:sqlite still says it is experimental in Node 22; a new user need not read that first.
  const emitWarning = process.emitWarning.bind(process)
  process.emitWarning = ((warning: string | Error, ...rest: never[]) => {
    if (String(warning instanceof Error ? warning.message : warning).includes('SQLite is an experimental feature')) return
    emitWarning(warning, ...rest)
  }) as typeof process.emitWarning
  const demoOnly = process.argv.includes('--demo-only')
  const tour = demoOnly || process.argv.includes('--tour')
  const port = Number(process.env.PORT ?? 8787)
  console.log(`Starting three regions and the gateway (wrangler dev) on port ${port}…`)
  let demo: RunningDemo | undefined
  let live = false
  let stopping: Promise<void> | undefined
  let stoppingSince = 0
  const stop = (code: number, signalled = false): Promise<void> => {
    if (stopping) {
      // One Ctrl-C arrives more than once (the terminal signals the whole group, npm and tsx relay it too): only a
      // later one means "stop waiting". Then nothing is left behind either (wrangler runs in a process group of its own).
      if (!signalled || Date.now() - stoppingSince < 3000) return stopping
      if (demo?.dev.process.pid) {
        try {
          process.kill(-demo.dev.process.pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
      process.exit(code)
    }
    stoppingSince = Date.now()
    stopping = (async () => {
      if (!demo) return // still starting: stopped as soon as it is up (below)
      if (!demoOnly) console.log('\nStopping wrangler dev and the regions…')
      await demo.stop()
      if (!demoOnly) console.log(`Stopped; nothing listens on ${demo.ports.join(', ')} any more. State kept in ${demo.dataDir}.`)
      process.exit(code)
    })()
    return stopping
  }
  process.on('SIGINT', () => void stop(0, true))
  process.on('SIGTERM', () => void stop(0, true))
  try {
    // Live lines start after the banner (the tour narrates its own requests).
    demo = await startDemo({ port, onLine: (line) => live && console.log(line) })
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    console.error(`The demo did not start: ${message}`)
    if (/EADDRINUSE/.test(message)) console.error(`A port it needs is taken: PORT=<port> npm start moves the gateway to <port> and the regions to the three after it.`)
    process.exit(1)
  }
  if (stopping) {
    stopping = undefined
    return stop(0)
  }
  const started = demo
  started.dev.process.once('exit', (code) => {
    if (stopping) return
    console.error(`wrangler dev exited (${code}):\n${started.dev.output().slice(-4000)}`)
    void stop(1)
  })

  if (tour) {
    console.log(`\nThe tour, against ${started.url} (regions ${started.regions.map((r) => `${r.name} ${r.url}`).join(', ')}):`)
    try {
      await runDemo(started.url)
    } catch (err) {
      console.error('The tour failed:', err instanceof Error ? err.message : err, '\n', started.dev.output().slice(-4000))
      return stop(1)
    }
  }
  if (demoOnly) return stop(0)
  console.log(banner(started))
  live = true
}

if (isMain(import.meta.url)) await main()
