import type { Context, Hono, MiddlewareHandler } from 'hono'
import { REPORT_INTERVAL_MS, STATUS_OBJECT, type StatusApi, type StatusDomain, type StatusReport } from '../durable/counters.js'
import type { JoinProgress } from '../durable/status-figures.js'
import type { AdmitCounts } from '../durable/types.js'
import { isolateCounts } from '../middleware/admit.js'
import { problem } from '../shared/problem.js'
import type { Breaker, BreakerState } from '../shared/health.js'
import type { GatewayBindings, GatewayState } from './types.js'
import { statusPage } from './status-page.js'
import { holdsStatusToken, MIN_STATUS_TOKEN_LENGTH } from './status-token.js'

/** One origin as the status page shows it. */
export interface OriginStatus {
  name: string
  url: string
  /**
   * What the next request meets: `down` (breaker open, cooling down),
   * `probing` (the cooldown is over: the next request probes it), else the
   * worst replica state over every domain (`stale`, `suspect`, `lagging`,
   * `joining`, `draining`), else `draining` for an origin the config drains, else `up`.
   */
  state: 'up' | 'down' | 'probing' | 'lagging' | 'joining' | 'suspect' | 'draining' | 'stale'
  /** The breaker as the next request meets it: an open breaker whose cooldown is over is `half-open`. */
  breaker: BreakerState
  p50Ms: number | null
  p95Ms: number | null
  /**
   * Recent latencies for the chart, at most 60, oldest first within each route; an origin that serves several routes
   * shows the latest of each, taken in turn (the windows keep no times). `p50Ms` and `p95Ms` are over all of them.
   */
  recentMs: number[]
}

/** What `GET /__once/status` answers (JSON). */
export interface GatewayStatus {
  origins: OriginStatus[]
  /** The ordering domains in most trouble (a replica not `active`, then the largest lag), at most 50. */
  domains: StatusDomain[]
  /** How many ordering domains have reported. */
  domainCount: number
  suspects: { domain: string; name: string; reason: string | null }[]
  /**
   * Per replica, how far it has joined the ordering domains of its replica set: `domains` (known domains whose
   * origins list it), `upToDate` (it reached the head there), `joining` (being fed the log), `resync` (needs a
   * snapshot: `stale`, or `suspect`), `waiting` (not told yet). A replica added to `origins` shows here first.
   */
  joins: JoinProgress[]
  /** Admits, replays, conflicts (409) and mismatches (422) over every object and isolate, since `since`. */
  counts: AdmitCounts
  /** How often the figures may change, and so how often the page asks again (ms). */
  refreshMs: number
  /** The newest report the figures hold (ISO time), or null before the first. */
  reportedAt: string | null
  /** Set when the status object did not answer: `counts` are then this isolate's alone, and `domains` empty. */
  unavailable?: string
  generatedAt: string
}

/** How often the page asks again: origins' health is live, the counts move at most every {@link REPORT_INTERVAL_MS}. */
export const STATUS_REFRESH_MS = 5000

/** How many latencies an origin's `recentMs` holds. */
const RECENT = 60

/**
 * Adds `GET /__once/status`. A browser (`Accept: text/html`) gets the page,
 * which holds no figures: it asks for the status token once, keeps it in
 * `sessionStorage`, and reads the JSON with `Authorization: Bearer …` every
 * {@link STATUS_REFRESH_MS}. Anything else gets the JSON, with the
 * `ONCE_STATUS_TOKEN` secret as a bearer token; a token in the query string
 * is refused (it would land in access logs and browser history). One status
 * read costs one RPC, to the status object, however many shards and domains
 * there are.
 *
 * @param app - the gateway app
 * @param state - what the gateway knows about itself
 * @example
 * statusRoutes(app, state)
 * // curl -H "Authorization: Bearer $ONCE_STATUS_TOKEN" https://gateway.example/__once/status
 */
export function statusRoutes(app: Hono<{ Bindings: GatewayBindings }>, state: GatewayState): void {
  app.get('/__once/status', async (c) => {
    if (prefersHtml(c)) return c.html(statusPage(), 200, { 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' })
    const token = c.env?.ONCE_STATUS_TOKEN
    // As the signing secret: a short token is guessed in a few tries, and wrong guesses cost nothing.
    if (token && token.length < MIN_STATUS_TOKEN_LENGTH) {
      const detail = `The ONCE_STATUS_TOKEN secret is shorter than ${MIN_STATUS_TOKEN_LENGTH} characters, so the status page stays closed: give a random one (e.g. openssl rand -base64 32).`
      console.error(`hono-once gateway: ${detail}`)
      return problem('misconfigured', { detail, instance: c.req.path })
    }
    if (!holdsStatusToken(c.req.header('authorization'), token)) {
      const inQuery = c.req.query('token') !== undefined
      return problem('unauthorized', {
        detail: !token
          ? 'The status page is closed: set the ONCE_STATUS_TOKEN secret to open it (for wrangler dev, in .dev.vars; for a deployed Worker, wrangler secret put ONCE_STATUS_TOKEN).'
          : `GET /__once/status needs the status token as Authorization: Bearer <ONCE_STATUS_TOKEN>${inQuery ? '; a token in the query string is not accepted (it would be logged)' : ''}.`,
        instance: c.req.path,
        headers: { 'www-authenticate': 'Bearer realm="hono-once status"' },
      })
    }
    const ns = c.env?.ONCE
    if (!ns || typeof ns.idFromName !== 'function') {
      // The same problem a write answers in this state (once()'s), not a bare 500 from the RPC below.
      return problem('misconfigured', { detail: 'No StableArea namespace: bind the StableArea class as ONCE in wrangler.toml ([[durable_objects.bindings]] name = "ONCE", class_name = "StableArea").', instance: c.req.path })
    }
    return c.json(await gatherStatus(c, state), 200, { 'cache-control': 'no-store' })
  })
}

/**
 * Middleware that hands what this isolate answered alone (replays and 422s
 * from its reply cache) to the status object: after a response, at most
 * every {@link REPORT_INTERVAL_MS}, in the background (`waitUntil`), never
 * on a request's path.
 *
 * @returns the middleware
 * @example
 * app.use(handOffIsolateCounts())
 */
export function handOffIsolateCounts(): MiddlewareHandler<{ Bindings: GatewayBindings }> {
  return async function handOffIsolateCounts(c, next) {
    await next()
    const now = Date.now()
    if (!isolate.id) isolateReport(now) // starts this isolate's clock for hand-overs
    if (now - isolate.handedAt < REPORT_INTERVAL_MS || !changed()) return
    const ns = c.env?.ONCE
    let waitUntil: ((p: Promise<unknown>) => void) | undefined
    try {
      waitUntil = c.executionCtx.waitUntil.bind(c.executionCtx)
    } catch {
      return // no execution context (a test calling app.fetch bare): the status read hands the counts over
    }
    if (!ns) return
    const report = isolateReport(now)
    isolate.handedAt = now
    waitUntil(
      statusObject(ns)
        .reportStatus(report)
        .then(() => (isolate.handed = report.counts))
        .catch((err: unknown) => console.warn(`hono-once: handing this isolate's counts to the status object failed: ${String(err)}`)),
    )
  }
}

/**
 * This isolate's part of the counts, and what the status object already has of it. Filled in at the first
 * request: Workers allow neither random values nor a running clock at the top level of a module.
 */
const isolate = { id: '', since: 0, handedAt: 0, handed: undefined as StatusReport['counts'] | undefined }

function isolateReport(at: number): StatusReport {
  if (!isolate.id) Object.assign(isolate, { id: `isolate/${crypto.randomUUID()}`, since: at, handedAt: at })
  const counts = { admits: 0, replays: isolateCounts.cacheReplays, conflicts: 0, mismatches: isolateCounts.cacheMismatches }
  return { reporter: isolate.id, counts, since: isolate.since, domains: [], at }
}

function changed(): boolean {
  const h = isolate.handed
  return !h ? isolateCounts.cacheReplays + isolateCounts.cacheMismatches > 0 : h.replays !== isolateCounts.cacheReplays || h.mismatches !== isolateCounts.cacheMismatches
}

function statusObject(ns: GatewayBindings['ONCE']): StatusApi {
  // Typed by its RPC surface: the generated stub type is too deep for the checker.
  return ns.get(ns.idFromName(STATUS_OBJECT)) as unknown as StatusApi
}

function prefersHtml(c: Context): boolean {
  const accept = c.req.header('accept') ?? ''
  return accept.includes('text/html') && !/^\s*application\/(problem\+)?json/.test(accept)
}

async function gatherStatus(c: Context<{ Bindings: GatewayBindings }>, state: GatewayState): Promise<GatewayStatus> {
  const now = Date.now()
  // One RPC: the figures, summed over every object and isolate; this isolate's own part goes along with it.
  const report = isolateReport(now)
  let unavailable: string | undefined
  const snapshot = await statusObject(c.env.ONCE)
    .readStatus(report)
    .catch((err: unknown) => {
      unavailable = `the status object did not answer (${err instanceof Error ? err.message : String(err)}): the counts are this isolate's alone`
      console.warn(`hono-once: ${unavailable}`)
      return undefined
    })
  if (snapshot) isolate.handed = report.counts

  const rank: OriginStatus['state'][] = ['up', 'draining', 'joining', 'lagging', 'suspect', 'stale']
  const origins: OriginStatus[] = state.config.origins.map((o) => {
    const groups = state.groups.filter((g) => g.group.options.origins.some((x) => x.name === o.name))
    const breakers = groups.map((g) => shownBreaker(g.group.health.breakerOf(o.name), now))
    const breaker: BreakerState = breakers.includes('open') ? 'open' : breakers.includes('half-open') ? 'half-open' : 'closed'
    // Every route's window: p50/p95 over all of them, so that one route's many fast reads cannot hide its slow writes.
    const windows = groups.map((g) => g.group.health.latencyOf(o.name).recent(RECENT))
    const sorted = windows.flat().sort((a, b) => a - b)
    const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : null)
    // An active replica merely behind (its acknowledgement on the way) is up; an unknown state ranks worst.
    const severity = (s: string) => (rank.includes(s as OriginStatus['state']) ? rank.indexOf(s as OriginStatus['state']) : rank.length)
    const states = Object.keys(snapshot?.replicas[o.name] ?? {}).filter((s) => s !== 'behind' && s !== 'active')
    // Drained in the config: out of rotation on every route, whatever a domain has reported yet.
    const worst = states.reduce<string>((w, s) => (severity(s) > severity(w) ? s : w), o.drain ? 'draining' : 'up') as OriginStatus['state']
    const stateOf: OriginStatus['state'] = breaker === 'open' ? 'down' : breaker === 'half-open' ? 'probing' : worst
    return { name: o.name, url: o.url, state: stateOf, breaker, p50Ms: at(50), p95Ms: at(95), recentMs: interleaved(windows, RECENT) }
  })
  return {
    origins,
    domains: snapshot?.domains ?? [],
    domainCount: snapshot?.domainCount ?? 0,
    suspects: snapshot?.suspects ?? [],
    joins: snapshot?.joins ?? [],
    counts: snapshot?.counts ?? { ...report.counts, since: report.since },
    refreshMs: STATUS_REFRESH_MS,
    reportedAt: snapshot?.reportedAt ? new Date(snapshot.reportedAt).toISOString() : null,
    ...(unavailable ? { unavailable } : {}),
    generatedAt: new Date(now).toISOString(),
  }
}

/**
 * The latest `n` latencies of several routes' windows (each oldest first), taken in turn from each window's newest
 * end, so that every route shows (one route's window does not push the others out), and given oldest first. The
 * windows keep no times, so across routes this is not an order in time.
 */
function interleaved(windows: number[][], n: number): number[] {
  const out: number[] = []
  const at = windows.map((w) => w.length)
  while (out.length < n && at.some((i) => i > 0)) {
    windows.forEach((w, k) => {
      if (out.length < n && at[k]! > 0) out.push(w[--at[k]!]!)
    })
  }
  return out.reverse()
}

/** The breaker as the next request meets it: once an open breaker's cooldown is over, the next request probes. */
function shownBreaker(b: Breaker, now: number): BreakerState {
  return b.state === 'open' && b.available(now) ? 'half-open' : b.state
}
