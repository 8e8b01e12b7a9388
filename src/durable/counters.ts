import type { DomainStatus } from './ordered.js'
import type { AdmitCounts, AdmitResult } from './types.js'

/**
 * The status page's figures (DESIGN §4; issue 15 items 11 and 17), kept so
 * that they survive restarts and are read from one place.
 *
 * - Every StableArea counts what it answers (admits, replays, conflicts,
 *   mismatches) in its own SQLite, in the same synchronous step as the admit
 *   it counts, so a restart loses nothing.
 * - At most every {@link REPORT_INTERVAL_MS} (by its alarm) an object that
 *   counted something, or holds a domain with a replica not `active` or
 *   behind, reports its **totals** and its domains to one status object
 *   ({@link STATUS_OBJECT}, a StableArea like the others). Isolates hand over
 *   what they answer alone (replays and 422s from their reply cache) the same
 *   way, in batches, never on a request's path.
 * - Reports carry absolute totals, so a report that is lost, repeated or late
 *   never counts twice: the status object adds only what grew since the
 *   reporter's last report.
 */

/**
 * Name of the one object the status figures are read from, in the StableArea namespace.
 *
 * @example
 * ns.get(ns.idFromName(STATUS_OBJECT))
 */
export const STATUS_OBJECT = 'once/status'

/**
 * How often at most an object reports to the status object (a random spread of up to half of it is added, so
 * that shards started together do not report together).
 *
 * @example
 * REPORT_INTERVAL_MS // 15000
 */
export const REPORT_INTERVAL_MS = 15_000

/** The four counted outcomes. */
export type CountName = Exclude<keyof AdmitCounts, 'since'>

const NAMES: readonly CountName[] = ['admits', 'replays', 'conflicts', 'mismatches']

/** How long an answer that wrote nothing waits at most before its count is written (with the others of that time). */
const FLUSH_MS = 1000

/** Domains listed in a report or a snapshot at most (the worst first in a snapshot). */
const MAX_DOMAINS = 50

/** An isolate that has not reported for this long is gone (isolates live minutes to hours): its row is dropped. */
const ISOLATE_ROW_TTL_MS = 7 * 24 * 3600_000

/**
 * Tables, as one migration step: `counters` (every object's own totals and
 * when its next report is due); `status_reporters`, `status_totals` and
 * `status_replicas` (filled only in the status object).
 *
 * @example
 * MIGRATIONS.push(COUNTERS_SCHEMA)
 */
export const COUNTERS_SCHEMA = `
  CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    total INTEGER NOT NULL
  );
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
  CREATE INDEX IF NOT EXISTS status_replicas_by_time ON status_replicas (reported_at);`

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
  /** The newest report folded in (ms since epoch), or null before the first. */
  reportedAt: number | null
}

/** The status object's RPC surface (methods of the StableArea class). */
export interface StatusApi {
  reportStatus(report: StatusReport): Promise<void>
  readStatus(report?: StatusReport): Promise<StatusSnapshot>
}

/**
 * One object's counters and, in the status object, the figures of all.
 * Touches no table before its first use (the schema is migrated at start-up).
 *
 * @example
 * const counters = new Counters(ctx.storage, (at) => void ctx.storage.setAlarm(at))
 * counters.count('new', Date.now()) // in the admit's synchronous step
 * await counters.report(ctx, env, () => ordered.status()) // in the alarm
 */
export class Counters {
  /** Whether a report is due (so a count need not set it), as far as this instance knows; undefined: not read yet. */
  #pending: boolean | undefined
  /** When this instance last reported (0: not yet). */
  #reportedAt = 0
  /** Whether this instance has made sure the `since` row exists. */
  #started = false
  #namespace: DurableObjectNamespace | null | undefined
  #warned = false

  /** Outcomes counted but not written yet (answers that wrote nothing of their own), and the timer that writes them. */
  readonly #unsaved = new Map<CountName, number>()
  #flushTimer: ReturnType<typeof setTimeout> | undefined

  /**
   * @param storage - the object's storage
   * @param wake - sets the object's alarm for `at` (when a report becomes due)
   */
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly wake: (at: number) => void,
  ) {}

  /**
   * Counts one admit outcome. An admit that writes (a new key, a retry
   * taking one over) is counted in the caller's synchronous step, so in the
   * same implicit transaction as its own write. An answer that writes
   * nothing (a replay, a conflict, a mismatch) must not wait for a write of
   * its own before it leaves (the output gate holds a reply until every
   * write before it is durable): it is counted in memory and written within
   * {@link FLUSH_MS}, many in one write.
   *
   * @param kind - what the admit answered
   * @param now - ms since epoch
   */
  count(kind: AdmitResult['kind'], now: number): void {
    const name: CountName = kind === 'new' ? 'admits' : kind === 'replay' ? 'replays' : kind === 'in_flight' ? 'conflicts' : 'mismatches'
    if (kind !== 'new') {
      this.#unsaved.set(name, (this.#unsaved.get(name) ?? 0) + 1)
      this.#flushTimer ??= setTimeout(() => this.#flush(), FLUSH_MS)
      return
    }
    this.#write([[name, 1]], now)
  }

  /** Writes what was counted in memory (its timer ran out, or a report or a read needs it). */
  #flush(): void {
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer)
    this.#flushTimer = undefined
    if (this.#unsaved.size === 0) return
    const counted = [...this.#unsaved]
    this.#unsaved.clear()
    try {
      this.storage.transactionSync(() => this.#write(counted, Date.now()))
    } catch (err) {
      for (const [name, n] of counted) this.#unsaved.set(name, (this.#unsaved.get(name) ?? 0) + n)
      console.warn(`hono-once: writing the status counters failed (tried again with the next count): ${String(err)}`)
    }
  }

  #write(counted: [CountName, number][], now: number): void {
    const sql = this.storage.sql
    for (const [name, n] of counted) sql.exec('INSERT INTO counters (name, total) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET total = total + excluded.total', name, n)
    if (!this.#started) {
      sql.exec(`INSERT INTO counters (name, total) VALUES ('since', ?) ON CONFLICT (name) DO NOTHING`, now)
      this.#started = true
    }
    if ((this.#pending ??= this.#dueAt() !== null)) return
    this.wake(this.#setDue(now + REPORT_INTERVAL_MS + Math.floor(Math.random() * (REPORT_INTERVAL_MS / 2)))!)
  }

  /**
   * This object's totals since it first counted.
   *
   * @returns the four counts and when counting began
   */
  totals(): AdmitCounts {
    this.#flush()
    const rows = this.storage.sql.exec<{ name: string; total: number }>('SELECT name, total FROM counters').toArray()
    const of = (n: string) => rows.find((r) => r.name === n)?.total
    return { admits: of('admits') ?? 0, replays: of('replays') ?? 0, conflicts: of('conflicts') ?? 0, mismatches: of('mismatches') ?? 0, since: of('since') ?? Date.now() }
  }

  /** When the alarm must run to report, or null when nothing waits to be reported. */
  nextWake(): number | null {
    return this.#dueAt()
  }

  /**
   * Reports this object's totals and domains to the status object, if a
   * report is due, or pending and the alarm runs anyway at least an interval
   * after this instance's last report (so a report never moves the alarm to
   * a time it would not have woken at otherwise). Never throws (it runs in the alarm): a failed report is
   * tried again one interval later, and loses nothing (totals, not
   * differences).
   *
   * @param ctx - the object's state (its id names the reporter and finds its namespace)
   * @param env - the object's environment
   * @param domains - the domains this object holds
   */
  async report(ctx: DurableObjectState, env: unknown, domains: () => DomainStatus[]): Promise<void> {
    const now = Date.now()
    const due = this.#dueAt()
    if (due === null || (due > now && this.#reportedAt + REPORT_INTERVAL_MS > now)) return
    const ns = this.#namespaceOf(ctx, env)
    if (!ns || ctx.id.equals(ns.idFromName(STATUS_OBJECT))) {
      this.#setDue(null)
      return
    }
    const held = domains()
    const { since, ...counts } = this.totals()
    const report: StatusReport = { reporter: ctx.id.toString(), counts, since, domains: held.slice(0, MAX_DOMAINS), at: now }
    try {
      await (ns.get(ns.idFromName(STATUS_OBJECT)) as unknown as StatusApi).reportStatus(report)
    } catch (err) {
      console.warn(`hono-once: the status report failed (tried again in ${REPORT_INTERVAL_MS / 1000} s): ${String(err)}`)
      this.#setDue(Date.now() + REPORT_INTERVAL_MS)
      return
    }
    this.#reportedAt = Date.now()
    // A domain with a replica behind or not active changes without admits (acks, catch-up): report it again.
    const troubled = held.some((d) => d.replicas.some((r) => r.state !== 'active' || r.lag > 0))
    this.#setDue(troubled ? Date.now() + REPORT_INTERVAL_MS : null)
  }

  /**
   * Folds a report into the figures (in the status object), in one
   * transaction: adds what each count grew by since the reporter's last
   * report, and replaces the reporter's domains.
   *
   * @param report - from {@link report} or an isolate
   */
  receive(report: StatusReport): void {
    if (!isReport(report)) throw new TypeError('hono-once: a status report must have a reporter, counts and domains')
    const sql = this.storage.sql
    this.storage.transactionSync(() => {
      const last = sql.exec<Record<CountName | 'reported_at', number>>('SELECT * FROM status_reporters WHERE reporter = ?', report.reporter).toArray()[0]
      if (last && last.reported_at > report.at) return
      for (const name of NAMES) {
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
      for (const d of report.domains.slice(0, MAX_DOMAINS)) {
        // Kept as a total: counting distinct domains on every read would scan them all.
        if (sql.exec('DELETE FROM status_replicas WHERE domain = ?', d.domain).rowsWritten === 0 && d.replicas.length > 0) {
          sql.exec(`INSERT INTO status_totals (name, total) VALUES ('domains', 1) ON CONFLICT (name) DO UPDATE SET total = total + 1`)
        }
        for (const r of d.replicas) {
          sql.exec(
            'INSERT INTO status_replicas (domain, name, state, head, acked, lag, reason, reported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
            d.domain,
            r.name,
            r.state,
            d.head,
            r.acked,
            r.lag,
            r.reason,
            report.at,
          )
        }
      }
      // Totals already hold what a gone isolate counted; its row only guarded against counting it twice.
      sql.exec(`DELETE FROM status_reporters WHERE reporter LIKE 'isolate/%' AND reported_at < ?`, report.at - ISOLATE_ROW_TTL_MS)
    })
  }

  /**
   * The figures summed over every reporter, for the status page: one read
   * of this object, however many shards and domains there are.
   *
   * @returns the snapshot
   */
  snapshot(): StatusSnapshot {
    const sql = this.storage.sql
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
         GROUP BY domain ORDER BY max(state != 'active') DESC, max(lag) DESC LIMIT ${MAX_DOMAINS}`,
      )
      .toArray()
      .map((r) => r.domain)
    if (worst.length < MAX_DOMAINS) {
      for (const { domain } of sql.exec<{ domain: string }>(`SELECT domain FROM status_replicas ORDER BY reported_at DESC LIMIT ${MAX_DOMAINS * 4}`)) {
        if (worst.length >= MAX_DOMAINS) break
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
      .exec<{ domain: string; name: string; reason: string | null }>(`SELECT domain, name, reason FROM status_replicas WHERE state = 'suspect' ORDER BY domain, name LIMIT ${MAX_DOMAINS}`)
      .toArray()
      .map((r) => ({ ...r }))
    return {
      counts: { admits: of('admits') ?? 0, replays: of('replays') ?? 0, conflicts: of('conflicts') ?? 0, mismatches: of('mismatches') ?? 0, since: of('since') ?? Date.now() },
      replicas,
      domains,
      domainCount: of('domains') ?? 0,
      suspects,
      reportedAt: sql.exec<{ at: number | null }>('SELECT max(reported_at) AS at FROM status_reporters').one().at,
    }
  }

  #dueAt(): number | null {
    return this.storage.sql.exec<{ total: number }>(`SELECT total FROM counters WHERE name = 'report_due'`).toArray()[0]?.total ?? null
  }

  #setDue(at: number | null): number | null {
    if (at === null) this.storage.sql.exec(`DELETE FROM counters WHERE name = 'report_due'`)
    else this.storage.sql.exec(`INSERT INTO counters (name, total) VALUES ('report_due', ?) ON CONFLICT (name) DO UPDATE SET total = excluded.total`, at)
    this.#pending = at !== null
    return at
  }

  /**
   * The namespace this object belongs to, found in its environment: the
   * object cannot be told its binding's name (once() takes any namespace),
   * but only its own namespace accepts its id.
   */
  #namespaceOf(ctx: DurableObjectState, env: unknown): DurableObjectNamespace | null {
    if (this.#namespace !== undefined) return this.#namespace
    this.#namespace = null
    for (const value of Object.values((env ?? {}) as Record<string, unknown>)) {
      if (Object.prototype.toString.call(value) !== '[object DurableObjectNamespace]') continue
      const ns = value as DurableObjectNamespace
      try {
        if (ns.idFromString(ctx.id.toString()).equals(ctx.id)) {
          this.#namespace = ns
          break
        }
      } catch {
        // Not this object's namespace: it refuses the id.
      }
    }
    if (!this.#namespace && !this.#warned) {
      this.#warned = true
      console.warn('hono-once: this StableArea found no binding of its own class in its environment, so it cannot report to the status page')
    }
    return this.#namespace
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
    NAMES.every((n) => Number.isSafeInteger(x.counts![n]) && x.counts![n] >= 0)
  )
}
