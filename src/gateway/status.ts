import type { Context, Hono } from 'hono'
import { getCookie, setCookie } from 'hono/cookie'
import type { DomainStatus } from '../durable/ordered.js'
import type { AdmitCounts, StableAreaApi } from '../durable/types.js'
import { isolateCounts } from '../middleware/admit.js'
import { problem } from '../middleware/problem.js'
import type { BreakerState } from '../origin-adapter/health.js'
import type { GatewayBindings, GatewayState } from './app.js'
import { statusPage } from './status-page.js'

/** One origin as the status page shows it. */
export interface OriginStatus {
  name: string
  url: string
  /** `up`, `down` (breaker open), `probing` (half-open), or the worst replica state in the domains followed. */
  state: 'up' | 'down' | 'probing' | 'lagging' | 'joining' | 'suspect' | 'draining' | 'stale'
  breaker: BreakerState
  p50Ms: number | null
  p95Ms: number | null
  /** Recent latencies, oldest first, for the chart. */
  recentMs: number[]
}

/** What `GET /__once/status` answers. */
export interface GatewayStatus {
  origins: OriginStatus[]
  /** The ordering domains this isolate served lately, with each replica's acknowledged sequence and lag. */
  domains: DomainStatus[]
  suspects: { domain: string; name: string; reason: string | null }[]
  /** Admits, replays, conflicts (409) and mismatches (422), summed over the objects followed, since they started. */
  counts: Omit<AdmitCounts, 'since'>
  generatedAt: string
}

const COOKIE = 'once_status'

/**
 * Adds `GET /__once/status`: JSON, or with `Accept: text/html` a small page
 * (a table of origins and a latency chart). It needs the `ONCE_STATUS_TOKEN`
 * secret as a bearer token (`Authorization: Bearer …`), or once as
 * `?token=…`, which sets an HttpOnly cookie for the browser and redirects.
 *
 * @param app - the gateway app
 * @param state - what the gateway knows about itself
 * @example
 * statusRoutes(app, state)
 */
export function statusRoutes(app: Hono<{ Bindings: GatewayBindings }>, state: GatewayState): void {
  app.get('/__once/status', async (c) => {
    const token = c.env?.ONCE_STATUS_TOKEN
    const given = c.req.query('token')
    if (token && given !== undefined && timingSafeEqual(given, token)) {
      setCookie(c, COOKIE, token, { httpOnly: true, sameSite: 'Strict', path: '/__once/status', secure: new URL(c.req.url).protocol === 'https:' })
      return c.redirect('/__once/status', 303)
    }
    const bearer = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? getCookie(c, COOKIE)
    if (!token || !bearer || !timingSafeEqual(bearer, token)) {
      return problem('unauthorized', {
        detail: token ? 'GET /__once/status needs the status token: Authorization: Bearer <ONCE_STATUS_TOKEN>.' : 'The status page is closed: set the ONCE_STATUS_TOKEN secret to open it.',
        instance: c.req.path,
        headers: { 'www-authenticate': 'Bearer realm="hono-once status"' },
      })
    }
    const status = await gatherStatus(c, state)
    if ((c.req.header('accept') ?? '').includes('text/html')) return c.html(statusPage(status))
    return c.json(status, 200, { 'cache-control': 'no-store' })
  })
}

async function gatherStatus(c: Context<{ Bindings: GatewayBindings }>, state: GatewayState): Promise<GatewayStatus> {
  const ns = c.env.ONCE
  const stub = (name: string) => ns.get(ns.idFromName(name)) as unknown as StableAreaApi
  const domainNames = [...state.domains]
  const shardNames = Array.from({ length: state.config.shards ?? 1 }, (_, i) => `once/${i}`)
  const [domainLists, counts] = await Promise.all([
    Promise.all(domainNames.map((d) => stub(`once/domain/${d}`).domains().catch(() => [] as DomainStatus[]))),
    Promise.all([...shardNames, ...domainNames.map((d) => `once/domain/${d}`)].map((n) => stub(n).stats().catch(() => undefined))),
  ])
  const domains = domainLists.flat()
  // The objects' counters, plus the replays this isolate served from its reply cache without asking them.
  const total = { admits: 0, replays: isolateCounts.cacheReplays, conflicts: 0, mismatches: 0 }
  for (const k of counts) if (k) for (const f of Object.keys(total) as (keyof typeof total)[]) total[f] += k[f]

  const worst: Record<string, OriginStatus['state']> = {}
  const rank: OriginStatus['state'][] = ['up', 'draining', 'joining', 'lagging', 'suspect', 'stale']
  for (const d of domains) {
    for (const r of d.replicas) {
      const s = r.state === 'active' ? 'up' : r.state
      if (rank.indexOf(s) > rank.indexOf(worst[r.name] ?? 'up')) worst[r.name] = s
    }
  }
  const origins: OriginStatus[] = state.config.origins.map((o) => {
    const groups = state.groups.filter((g) => g.group.options.origins.some((x) => x.name === o.name))
    const breakers = groups.map((g) => g.group.health.breakerOf(o.name).state)
    const breaker: BreakerState = breakers.includes('open') ? 'open' : breakers.includes('half-open') ? 'half-open' : 'closed'
    const windows = groups.map((g) => g.group.health.latencyOf(o.name))
    const recent = windows.flatMap((w) => w.recent(60)).slice(-60)
    const sorted = [...recent].sort((a, b) => a - b)
    const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : null)
    const stateOf: OriginStatus['state'] = breaker === 'open' ? 'down' : breaker === 'half-open' ? 'probing' : (worst[o.name] ?? 'up')
    return { name: o.name, url: o.url, state: stateOf, breaker, p50Ms: at(50), p95Ms: at(95), recentMs: recent }
  })
  const suspects = domains.flatMap((d) => d.replicas.filter((r) => r.state === 'suspect').map((r) => ({ domain: d.domain, name: r.name, reason: r.reason })))
  return { origins, domains, suspects, counts: total, generatedAt: new Date().toISOString() }
}

/** Compares two strings without an early exit (the token must not leak through timing). */
function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a)
  const y = new TextEncoder().encode(b)
  let diff = x.length ^ y.length
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0)
  return diff === 0
}
