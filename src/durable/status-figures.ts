import type { DomainStatus } from './types.js'
import type { AdmitCounts } from './types.js'
import { directoryWake, joinProgress, type JoinProgress, learnDomains } from './directory.js'

export type { JoinProgress }

/**
 * The status object's side of the status page's figures (counters.ts has
 * the side of every other object): it folds the reports of objects and
 * isolates into totals, and answers them in one read.
 */

/**
 * Name of the one object the status figures are read from, in the StableArea namespace.
 *
 * @example
 * ns.get(ns.idFromName(STATUS_OBJECT))
 */
export const STATUS_OBJECT = 'once/status'

/** The four counted outcomes. */
export type CountName = Exclude<keyof AdmitCounts, 'since'>

/**
 * The four counted outcomes, in order.
 *
 * @example
 * for (const name of COUNT_NAMES) total[name] += report.counts[name]
 */
export const COUNT_NAMES: readonly CountName[] = ['admits', 'replays', 'conflicts', 'mismatches']

/**
 * Domains listed in a report or a snapshot at most (the worst first in a snapshot).
 *
 * @example
 * held.slice(0, MAX_STATUS_DOMAINS)
 */
export const MAX_STATUS_DOMAINS = 50

/** An isolate that has not reported for this long is gone (isolates live minutes to hours): its row is dropped. */
const ISOLATE_ROW_TTL_MS = 7 * 24 * 3600_000

/**
 * The status object's tables (created in every object, filled only in the status object): each reporter's last
 * totals, the sums, and each domain's replicas as last reported (schema step 8 adds each replica's `url`).
 *
 * @example
 * COUNTERS_SCHEMA + STATUS_SCHEMA
 */
export const STATUS_SCHEMA = `
  CREATE TABLE IF NOT EXISTS status_reporters (
    reporter    TEXT PRIMARY KEY,
    admits      INTEGER NOT NULL,
    replays     INTEGER NOT NULL,
    conflicts   INTEGER NOT NULL,
    mismatches  INTEGER NOT NULL,
    reported_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS status_totals (
    name  TEXT PRIMARY KEY,
    total INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS status_replicas (
    domain      TEXT NOT NULL,
    name        TEXT NOT NULL,
    state       TEXT NOT NULL,
    head        INTEGER NOT NULL,
    acked       INTEGER NOT NULL,
    lag         INTEGER NOT NULL,
    reason      TEXT,
    reported_at INTEGER NOT NULL,
    PRIMARY KEY (domain, name)
  );
  CREATE INDEX IF NOT EXISTS status_replicas_troubled ON status_replicas (name, state) WHERE state != 'active' OR lag > 0;
  CREATE INDEX IF NOT EXISTS status_replicas_by_time ON status_replicas (reported_at);
  CREATE INDEX IF NOT EXISTS status_reporters_by_time ON status_reporters (reported_at);`

/** What an object or an isolate hands to the status object. */
export interface StatusReport {
  /** Who reports: an object's id, or `isolate/<uuid>`. Totals are per reporter. */
  reporter: string
  /** The reporter's totals since it began counting (not a difference since its last report). */
  counts: Omit<AdmitCounts, 'since'>
  /** When the reporter began counting (ms since epoch). */
  since: number
  /** The ordering domains the reporter holds (objects only; at most 50). */
  domains: DomainStatus[]
  /** When the report was made (ms since epoch); an older report than the last one is ignored. */
  at: number
}

/** One ordering domain as the status object last heard of it. */
export interface StatusDomain {
  domain: string
  /** The last sequence given out when it reported. */
  head: number
  /** Each replica: state (`active`, `lagging`, `joining`, `suspect`, `draining`, `stale`), acknowledged sequence, lag behind `head`, why. */
  replicas: { name: string; state: string; acked: number; lag: number; reason: string | null }[]
  /** When its object reported it (ms since epoch). */
  reportedAt: number
}

/** What the status object answers: the figures summed over every reporter. */
export interface StatusSnapshot {
  /** Admits, replays, conflicts (409) and mismatches (422), since `counts.since`. */
  counts: AdmitCounts
  /** Per replica name, how many domains hold it in each state other than `active` (or behind while `active`). */
  replicas: Record<string, Record<string, number>>
  /** The domains in most trouble first (a replica not `active`, then the largest lag), at most 50. */
  domains: StatusDomain[]
  /** How many domains the status object knows. */
  domainCount: number
  /** Replicas marked `suspect`, at most 50. */
  suspects: { domain: string; name: string; reason: string | null }[]
  /** Per replica, how far it has joined the domains of its replica set (directory.ts). */
  joins: JoinProgress[]
  /** The newest report folded in (ms since epoch), or null before the first. */
  reportedAt: number | null
}

/** The status object's RPC surface (methods of the StableArea class). */
export interface StatusApi {
  reportStatus(report: StatusReport): Promise<void>
  readStatus(report?: StatusReport): Promise<StatusSnapshot>
}

/**
 * Folds a report into the figures (in the status object), in one
 * transaction: adds what each count grew by since the reporter's last
 * report, and replaces the reporter's domains.
 *
 * @param storage - the status object's storage
 * @param report - from an object's alarm or an isolate
 * @returns whether the directory now has replica sets to push (the status object's alarm does)
 * @throws TypeError when the report is malformed (nothing is changed)
 * @example
 * receiveReport(ctx.storage, { reporter: 'isolate/…', counts, since, domains: [], at: Date.now() })
 */
export function receiveReport(storage: DurableObjectStorage, report: StatusReport): boolean {
  if (!isReport(report)) throw new TypeError('hono-once: a status report must have a reporter, counts and domains')
  const sql = storage.sql
  return storage.transactionSync(() => {
    const last = sql.exec<Record<CountName | 'reported_at', number>>('SELECT * FROM status_reporters WHERE reporter = ?', report.reporter).toArray()[0]
    if (last && last.reported_at > report.at) return false
    for (const name of COUNT_NAMES) {
      const grew = Math.max(0, report.counts[name] - (last?.[name] ?? 0))
      if (grew > 0) sql.exec('INSERT INTO status_totals (name, total) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET total = total + excluded.total', name, grew)
    }
    sql.exec(`INSERT INTO status_totals (name, total) VALUES ('since', ?) ON CONFLICT (name) DO UPDATE SET total = min(total, excluded.total)`, report.since)
    sql.exec(
      `INSERT INTO status_reporters (reporter, admits, replays, conflicts, mismatches, reported_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (reporter) DO UPDATE SET admits = max(admits, excluded.admits), replays = max(replays, excluded.replays),
         conflicts = max(conflicts, excluded.conflicts), mismatches = max(mismatches, excluded.mismatches), reported_at = excluded.reported_at`,
      report.reporter,
      report.counts.admits,
      report.counts.replays,
      report.counts.conflicts,
      report.counts.mismatches,
      report.at,
    )
    const domains = report.domains.slice(0, MAX_STATUS_DOMAINS)
    for (const d of domains) storeDomainStatus(sql, d, report.at)
    learnDomains(sql, report.reporter, domains, Date.now())
    // Totals already hold what a gone isolate counted; its row only guarded against counting it twice.
    sql.exec(`DELETE FROM status_reporters WHERE reported_at < ? AND reporter LIKE 'isolate/%'`, report.at - ISOLATE_ROW_TTL_MS) // by the time index
    return directoryWake(sql) !== null
  })
}

/**
 * Replaces one domain's replicas in the figures (in the status object), as a
 * report or the directory's push answer tells them.
 *
 * @param sql - the status object's SQL storage
 * @param d - the domain as its object tells it
 * @param at - when it was told (ms since epoch)
 * @example
 * storeDomainStatus(sql, status, Date.now())
 */
export function storeDomainStatus(sql: SqlStorage, d: DomainStatus, at: number): void {
  // Kept as a total: counting distinct domains on every read would scan them all.
  if (sql.exec('DELETE FROM status_replicas WHERE domain = ?', d.domain).rowsWritten === 0 && d.replicas.length > 0) {
    sql.exec(`INSERT INTO status_totals (name, total) VALUES ('domains', 1) ON CONFLICT (name) DO UPDATE SET total = total + 1`)
  }
  for (const r of d.replicas) {
    sql.exec(
      'INSERT INTO status_replicas (domain, name, url, state, head, acked, lag, reason, reported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      d.domain,
      r.name,
      typeof r.url === 'string' ? r.url : null,
      r.state,
      d.head,
      r.acked,
      r.lag,
      r.reason,
      at,
    )
  }
}

/**
 * The figures summed over every reporter, for the status page: one read
 * of the status object, however many shards and domains there are.
 *
 * @param sql - the status object's SQL storage
 * @returns the snapshot
 * @example
 * const { counts, domains } = statusSnapshot(ctx.storage.sql)
 */
export function statusSnapshot(sql: SqlStorage): StatusSnapshot {
  const totals = sql.exec<{ name: string; total: number }>('SELECT name, total FROM status_totals').toArray()
  const of = (n: string) => totals.find((r) => r.name === n)?.total
  const replicas: StatusSnapshot['replicas'] = {}
  for (const r of sql
    .exec<{ name: string; state: string; n: number }>(`SELECT name, state, count(*) AS n FROM status_replicas WHERE state != 'active' OR lag > 0 GROUP BY name, state`)
    .toArray()) {
    ;(replicas[r.name] ??= {})[r.state === 'active' ? 'behind' : r.state] = r.n
  }
  // The troubled ones (through the partial index), then the latest reported: never a scan of every domain.
  const worst = sql
    .exec<{ domain: string }>(
      `SELECT domain FROM status_replicas WHERE state != 'active' OR lag > 0
       GROUP BY domain ORDER BY max(state != 'active') DESC, max(lag) DESC LIMIT ${MAX_STATUS_DOMAINS}`,
    )
    .toArray()
    .map((r) => r.domain)
  if (worst.length < MAX_STATUS_DOMAINS) {
    for (const { domain } of sql.exec<{ domain: string }>(`SELECT domain FROM status_replicas ORDER BY reported_at DESC LIMIT ${MAX_STATUS_DOMAINS * 4}`)) {
      if (worst.length >= MAX_STATUS_DOMAINS) break
      if (!worst.includes(domain)) worst.push(domain)
    }
  }
  const domains = worst.map((domain) => {
    const rows = sql.exec<{ name: string; state: string; head: number; acked: number; lag: number; reason: string | null; reported_at: number }>(
      'SELECT name, state, head, acked, lag, reason, reported_at FROM status_replicas WHERE domain = ? ORDER BY name',
      domain,
    ).toArray()
    return {
      domain,
      head: rows[0]?.head ?? 0,
      replicas: rows.map((r) => ({ name: r.name, state: r.state, acked: r.acked, lag: r.lag, reason: r.reason })),
      reportedAt: rows[0]?.reported_at ?? 0,
    }
  })
  const suspects = sql
    .exec<{ domain: string; name: string; reason: string | null }>(`SELECT domain, name, reason FROM status_replicas WHERE state = 'suspect' ORDER BY domain, name LIMIT ${MAX_STATUS_DOMAINS}`)
    .toArray()
    .map((r) => ({ ...r }))
  return {
    counts: { admits: of('admits') ?? 0, replays: of('replays') ?? 0, conflicts: of('conflicts') ?? 0, mismatches: of('mismatches') ?? 0, since: of('since') ?? Date.now() },
    replicas,
    domains,
    domainCount: of('domains') ?? 0,
    suspects,
    joins: joinProgress(sql),
    reportedAt: sql.exec<{ at: number | null }>('SELECT max(reported_at) AS at FROM status_reporters').one().at,
  }
}

function isReport(r: unknown): r is StatusReport {
  const x = r as Partial<StatusReport> | null
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.reporter === 'string' &&
    typeof x.at === 'number' &&
    typeof x.since === 'number' &&
    Array.isArray(x.domains) &&
    typeof x.counts === 'object' &&
    x.counts !== null &&
    COUNT_NAMES.every((n) => Number.isSafeInteger(x.counts![n]) && x.counts![n] >= 0)
  )
}
