import type { DomainStatus } from './types.js'
import {
  type CountName,
  MAX_STATUS_DOMAINS,
  receiveReport,
  STATUS_OBJECT,
  STATUS_SCHEMA,
  statusSnapshot,
  type StatusApi,
  type StatusReport,
  type StatusSnapshot,
} from './status-figures.js'
import type { AdmitCounts, AdmitResult } from './types.js'
import { ownNamespace } from './own-namespace.js'

/**
 * The status page's figures (DESIGN §4; issue 15 items 11 and 17), kept so
 * that they survive restarts and are read from one place.
 *
 * - Every StableArea counts what it answers (admits, replays, conflicts,
 *   mismatches) in its own SQLite: an admit in the same synchronous step as
 *   its own write. An answer that writes nothing is counted in memory and
 *   written with the next write the object makes anyway (the next admit, or
 *   the report), so it never adds a timer or a transaction to the request
 *   path; only the answer that makes a report due (at most one per report
 *   interval) writes that. Restarts keep what was written; what a restart
 *   can lose is bounded: the non-writing answers of at most one and a half
 *   report intervals (22.5 s).
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
 * How often at most an object reports to the status object (a random spread of up to half of it is added, so
 * that shards started together do not report together).
 *
 * @example
 * REPORT_INTERVAL_MS // 15000
 */
export const REPORT_INTERVAL_MS = 15_000

/**
 * Tables, as one migration step: `counters` (every object's own totals and
 * when its next report is due), and the status object's (status-figures.ts).
 *
 * @example
 * MIGRATIONS.push(COUNTERS_SCHEMA)
 */
export const COUNTERS_SCHEMA = `
  CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    total INTEGER NOT NULL
  );
  ${STATUS_SCHEMA}`

/**
 * Schema step 9: every row inserted into `records` (a new key's admit, the
 * only statement that inserts there) adds one to the `admits` counter, in
 * the same statement and so in the same transaction (see
 * {@link Counters.admitted}).
 *
 * @example
 * MIGRATIONS.push(ADMIT_COUNT_TRIGGER)
 */
export const ADMIT_COUNT_TRIGGER = `
  CREATE TRIGGER IF NOT EXISTS records_count_admits AFTER INSERT ON records
  BEGIN
    INSERT INTO counters (name, total) VALUES ('admits', 1) ON CONFLICT (name) DO UPDATE SET total = total + 1;
  END;`

export { STATUS_OBJECT, type StatusApi, type StatusDomain, type StatusReport, type StatusSnapshot } from './status-figures.js'

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

  /** Outcomes counted but not written yet (answers that wrote nothing of their own). */
  readonly #unsaved = new Map<CountName, number>()

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
   * same implicit transaction as its own write, with whatever was counted in
   * memory since the last write. An answer that writes nothing (a replay, a
   * conflict, a mismatch) must not wait for a write of its own before it
   * leaves (the output gate holds a reply until every write before it is
   * durable): it is counted in memory, and written by the next admit or by
   * the report (at most {@link REPORT_INTERVAL_MS} and a half later; the
   * report's alarm is set once, when nothing is due yet).
   *
   * Measured (bench section 1): a timer that wrote these counts every second
   * cost once() 9 % of its new-key latency; writing them with the next admit
   * costs nothing measurable.
   *
   * @param kind - what the admit answered
   * @param now - ms since epoch
   */
  count(kind: AdmitResult['kind'], now: number): void {
    if (kind === 'unknown') return
    const name: CountName = kind === 'new' ? 'admits' : kind === 'replay' ? 'replays' : kind === 'in_flight' ? 'conflicts' : 'mismatches'
    this.#unsaved.set(name, (this.#unsaved.get(name) ?? 0) + 1)
    if (kind === 'new') this.#flush(now)
    else this.#due(now)
  }

  /**
   * An admit that its own write counted: a new key's record insert, which
   * adds one to `admits` by the `records_count_admits` trigger (schema step
   * 9), in the same statement. Writes whatever else was counted in memory,
   * as {@link count} does for an admit, and makes a report due; with nothing
   * else counted, it costs no statement of its own.
   *
   * Measured (bench section 1): every statement a request runs costs it
   * about 60 µs under `wrangler dev`, whatever it does; the admit count as a
   * statement of its own was one of three on a new key's path.
   *
   * @param now - ms since epoch
   */
  admitted(now: number): void {
    if (this.#unsaved.size > 0) return this.#flush(now)
    this.#start(now)
    this.#due(now)
    this.#started = true
  }

  /** Writes what was counted in memory, in the caller's synchronous step (its implicit transaction). */
  #flush(now: number): void {
    if (this.#unsaved.size === 0) return
    const sql = this.storage.sql
    for (const [name, n] of this.#unsaved) sql.exec('INSERT INTO counters (name, total) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET total = total + excluded.total', name, n)
    this.#start(now)
    this.#due(now)
    // Only now: a statement above that throws rolls its transaction back, and the counts stay to be written again.
    this.#unsaved.clear()
    this.#started = true
  }

  /** Writes when counting began, unless this instance did (the first count ever keeps its time); the caller marks it done. */
  #start(now: number): void {
    if (!this.#started) this.storage.sql.exec(`INSERT INTO counters (name, total) VALUES ('since', ?) ON CONFLICT (name) DO NOTHING`, now)
  }

  /** Unless a report is due already, makes one due an interval (plus a random spread) from now, and wakes the alarm for it. */
  #due(now: number): void {
    if ((this.#pending ??= this.#dueAt() !== null)) return
    this.wake(this.#setDue(now + REPORT_INTERVAL_MS + Math.floor(Math.random() * (REPORT_INTERVAL_MS / 2)))!)
  }

  /**
   * This object's totals since it first counted.
   *
   * @returns the four counts and when counting began
   */
  totals(): AdmitCounts {
    try {
      this.storage.transactionSync(() => this.#flush(Date.now()))
    } catch (err) {
      // Kept in memory (the transaction rolled back, #flush clears only after its writes): written next time.
      console.warn(`hono-once: writing the status counters failed (tried again with the next count): ${String(err)}`)
    }
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
    const report: StatusReport = { reporter: ctx.id.toString(), counts, since, domains: held.slice(0, MAX_STATUS_DOMAINS), at: now }
    try {
      await (ns.get(ns.idFromName(STATUS_OBJECT)) as unknown as StatusApi).reportStatus(report)
    } catch (err) {
      console.warn(`hono-once: the status report failed (tried again in ${REPORT_INTERVAL_MS / 1000} s): ${String(err)}`)
      this.#setDue(Date.now() + REPORT_INTERVAL_MS)
      return
    }
    this.#reportedAt = Date.now()
    // Counted while the report was on its way, or a domain with a replica behind or not active (it changes
    // without admits: acks, catch-up): report again an interval later.
    const after = this.totals()
    const grew = (Object.keys(counts) as CountName[]).some((k) => after[k] !== counts[k])
    const troubled = held.some((d) => d.replicas.some((r) => r.state !== 'active' || r.lag > 0))
    this.#setDue(grew || troubled ? Date.now() + REPORT_INTERVAL_MS : null)
  }

  /**
   * Folds a report into the figures (on the status object; status-figures.ts).
   *
   * @param report - from an object's alarm or an isolate
   * @returns whether the directory has replica sets to push (directory.ts)
   */
  receive(report: StatusReport): boolean {
    return receiveReport(this.storage, report)
  }

  /**
   * Makes a report due by `at` at the latest (the directory changed this object's domains: the status page should
   * hear of it without waiting for a count).
   *
   * @param at - ms since epoch
   */
  dueBy(at: number): void {
    const due = this.#dueAt()
    if (due === null || due > at) this.#setDue(at)
  }

  /**
   * The figures summed over every reporter (on the status object; status-figures.ts).
   *
   * @returns the snapshot
   */
  snapshot(): StatusSnapshot {
    return statusSnapshot(this.storage.sql)
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
    this.#namespace = ownNamespace(ctx, env)
    if (!this.#namespace && !this.#warned) {
      this.#warned = true
      console.warn('hono-once: this StableArea found no binding of its own class in its environment, so it cannot report to the status page')
    }
    return this.#namespace
  }
}

