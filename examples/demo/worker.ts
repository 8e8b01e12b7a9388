/**
 * The `npm start` demo Worker: the config-driven gateway of `src/gateway.ts`
 * exactly as `wrangler deploy` ships it, plus routes that exist only here,
 * to play with the three local regions while watching the gateway:
 *
 * - `POST /__demo/regions/:name/down`: the region resets every connection
 *   (writes fail over, reads hedge to the next region, the breaker opens);
 * - `POST /__demo/regions/:name/up`: the region is back at its own latency
 *   (the stable area's alarm catches it up from the log);
 * - `POST /__demo/regions/:name/slow?ms=800` (or `{"ms":800}`): the region
 *   answers late (reads are hedged, writes answered by a faster replica);
 * - `GET /__demo/regions`: each region's URL and faults;
 * - `GET /__demo/accounts/:id`: the balance each region holds, read at the
 *   region itself (its control route, which no fault touches), to watch a
 *   region fall behind and catch up.
 *
 * It also logs one line per request that went through the gateway
 * (`once-demo {json}`), which `npm start` picks out of wrangler's output
 * and prints as the live line per request.
 *
 * The deployed gateway (root `wrangler.toml`, `main = "src/gateway.ts"`)
 * has none of this.
 *
 * @module
 */
import { Hono } from 'hono'
import gateway, { parseGatewayConfig, type GatewayBindings, type GatewayConfig } from '../../src/gateway.js'
import { DEMO_LOG_PREFIX, type DemoControlLine, type DemoLogLine } from './log.js'

export { StableArea } from '../../src/gateway.js'

/** What a region's `GET /__origin/stats` answers that the demo reads. */
interface RegionStats {
  balances: Record<string, number>
  requests: number
  faults: { down: boolean; latencyMs: number }
}

/** How slow `/slow` makes a region when no `ms` is given. */
const DEFAULT_SLOW_MS = 800

let parsed: { raw: unknown; config: GatewayConfig } | undefined
function configOf(env: GatewayBindings): GatewayConfig {
  if (!parsed || parsed.raw !== env.ONCE_CONFIG) parsed = { raw: env.ONCE_CONFIG, config: parseGatewayConfig(env.ONCE_CONFIG) }
  return parsed.config
}

const demo = new Hono<{ Bindings: GatewayBindings }>()

demo.onError((err, c) =>
  c.json({ title: 'Demo control failed', status: 502, detail: err instanceof Error ? err.message : String(err) }, 502, { 'content-type': 'application/problem+json' }),
)

demo.post('/__demo/regions/:name/:action{down|up|slow}', async (c) => {
  const name = c.req.param('name')
  const action = c.req.param('action') as DemoControlLine['action']
  const region = configOf(c.env).origins.find((o) => o.name === name)
  if (!region) return c.json({ title: 'No such region', status: 404, detail: `Regions: ${configOf(c.env).origins.map((o) => o.name).join(', ')}.` }, 404, { 'content-type': 'application/problem+json' })
  let update: Record<string, unknown>
  if (action === 'down') update = { down: true }
  else if (action === 'up') update = { reset: true } // back to its own latency, every fault off
  else {
    const body = (await c.req.json().catch(() => ({}))) as { ms?: unknown }
    const ms = Number(c.req.query('ms') ?? body.ms ?? DEFAULT_SLOW_MS)
    if (!Number.isInteger(ms) || ms < 0 || ms > 120_000) return c.json({ title: 'Invalid ms', status: 400, detail: 'ms must be an integer from 0 to 120000.' }, 400, { 'content-type': 'application/problem+json' })
    update = { down: false, latencyMs: ms }
  }
  const res = await fetch(`${region.url}/__origin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(update), signal: AbortSignal.timeout(5000) })
  if (!res.ok) throw new Error(`${name}: POST /__origin/faults answered ${res.status}: ${await res.text()}`)
  const faults = (await res.json()) as RegionStats['faults']
  const line: DemoControlLine = { kind: 'control', region: name, action, latencyMs: faults.latencyMs, down: faults.down }
  console.log(DEMO_LOG_PREFIX + JSON.stringify(line))
  return c.json({ region: name, action, faults })
})

demo.get('/__demo/regions', async (c) => {
  const regions = await Promise.all(
    configOf(c.env).origins.map(async (o) => {
      const stats = await regionStats(o.url)
      return { name: o.name, url: o.url, reachable: stats !== undefined, down: stats?.faults.down ?? null, latencyMs: stats?.faults.latencyMs ?? null, requests: stats?.requests ?? null }
    }),
  )
  return c.json({ regions })
})

demo.get('/__demo/accounts/:id', async (c) => {
  const id = c.req.param('id')
  const origins = configOf(c.env).origins
  const stats = await Promise.all(origins.map((o) => regionStats(o.url)))
  const balances: Record<string, number | null> = {}
  origins.forEach((o, i) => (balances[o.name] = stats[i] ? (stats[i].balances[id] ?? 0) : null))
  const values = Object.values(balances)
  return c.json({ id, balances, equal: values.every((v) => v !== null && v === values[0]) })
})

demo.all('/__demo/*', (c) =>
  c.json(
    { title: 'Not a demo route', status: 404, detail: 'POST /__demo/regions/:name/{down,up,slow}, GET /__demo/regions, GET /__demo/accounts/:id.' },
    404,
    { 'content-type': 'application/problem+json' },
  ),
)

/** A region's own view (its control route: never faulted, never signed), or undefined when it cannot be reached. */
async function regionStats(url: string): Promise<RegionStats | undefined> {
  try {
    const res = await fetch(`${url}/__origin/stats`, { signal: AbortSignal.timeout(3000) })
    return res.ok ? ((await res.json()) as RegionStats) : undefined
  } catch {
    return undefined
  }
}

/** Paths not worth a live line: the status page polls its JSON every second. */
const QUIET = new Set(['/__once/status', '/favicon.ico'])

export default {
  async fetch(request, env, ctx) {
    const path = new URL(request.url).pathname
    if (path.startsWith('/__demo/')) return demo.fetch(request, env, ctx)
    const started = Date.now()
    const res = await gateway.fetch!(request, env, ctx)
    if (!QUIET.has(path)) {
      const key = request.headers.get('idempotency-key')
      const line: DemoLogLine = {
        kind: 'request',
        method: request.method,
        path,
        key: key === null ? null : key.replace(/^"(.*)"$/, '$1'),
        status: res.status,
        origin: res.headers.get('once-origin'),
        replayed: res.headers.get('idempotent-replayed') === 'true',
        sequence: res.headers.get('once-sequence'),
        ms: Date.now() - started,
      }
      console.log(DEMO_LOG_PREFIX + JSON.stringify(line))
    }
    return res
  },
} satisfies ExportedHandler<GatewayBindings>
