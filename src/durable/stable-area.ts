import { DurableObject } from 'cloudflare:workers'
import { Relays } from './relays.js'
import { Waiters } from '../shared/waiters.js'
import { OrderedDomains } from './ordered.js'
import { type CatchUpHost, catchUpDomains } from './catch-up.js'
import { Records } from './records.js'
import { expireRecords, MIN_ALARM_GAP_MS, nextAlarm, RESENDS_PER_ALARM } from './alarm-plan.js'
import { HealthBySet, resendRelay, type Resender } from './resend.js'
import { migrate, MISCONFIGURED, startupFault } from './schema.js'
import { abandonEntry, type AbandonResult } from './abandon.js'
import { directoryWake } from './directory.js'
import { spreadReplicaSets } from './directory-spread.js'
import { adoptReplicaSets, DRAINED_BY_OPERATOR } from './replica-sets.js'

export { MISCONFIGURED }
import { Counters, type StatusReport, type StatusSnapshot } from './counters.js'
import type { AdmitCounts, AdmitRequest, AdmitResult, CommitRequest, CommitResult, DivergenceEvent, DomainStatus, LogEntry } from './types.js'
import type { ReplicaAck, ReplicaState, RecordInfo, RelayInput, ReplicaSetPush, StableAreaApi } from './types.js'

/**
 * The stable area (seed 003, Fig. 5): a SQLite-backed Durable Object holding
 * the table of processed requests, so that neither a Worker crash nor a
 * restart of the object itself loses what was committed.
 *
 * Callers reach it through small typed RPC methods. `admit` answers in one
 * round trip with one of `new`, `replay`, `in_flight` or `mismatch`;
 * `commit` stores the reply and flips the record to `committed` in one
 * transaction. The alarm deletes expired records and takes over the
 * relayed and ordered requests whose Worker died.
 *
 * Re-export it from your Worker entry and bind it as `ONCE`:
 *
 * @example
 * // src/index.ts
 * export { StableArea } from 'hono-once'
 * // wrangler.toml
 * // [[durable_objects.bindings]]
 * // name = "ONCE"
 * // class_name = "StableArea"
 * // [[migrations]]
 * // tag = "v1"
 * // new_sqlite_classes = ["StableArea"]
 */
export class StableArea extends DurableObject implements StableAreaApi {
  /** When the alarm is set for, as far as this instance knows; null when none is. */
  #alarmAt: number | null = null
  /** Duplicates blocked until the original finishes (seed 003's PA_blockRequest). */
  readonly #waiters = new Waiters()

  /** Why this object cannot work (its class was migrated without SQLite storage), or null. */
  #misconfigured: string | null = null
  /** Health of the origins the alarm resends to, as this object has seen them. */
  readonly #health = new HealthBySet()
  #relaysTable: Relays | undefined
  /** What this object answered, counted in its storage with each admit (counters.ts), reported to the status object. */
  readonly #counters = new Counters(this.ctx.storage, (at) => void this.#scheduleAlarm(at).catch(() => {}))
  #orderedTable: OrderedDomains | undefined
  #recordsTable: Records | undefined

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env)
    void ctx.blockConcurrencyWhile(async () => {
      try {
        migrate(ctx.storage)
      } catch (err) {
        // Every call would fail alike (no SQLite, a newer schema): a 500 that says why; anything else is thrown (it may pass).
        const why = startupFault('StableArea', ctx.storage, err)
        if (why === undefined) throw err
        this.#misconfigured = why
        return
      }
      this.#alarmAt = await ctx.storage.getAlarm()
    })
  }

  /**
   * Admits a request once. A first caller gets `new` and a lease; a duplicate
   * gets the stored reply, `mismatch` when its fingerprint differs, or — while
   * the first still runs — waits up to `waitMs` for it and then gets
   * `in_flight`. A record whose lease ran out (its Worker died) is handed to
   * the next caller, with the same request id.
   *
   * @param request - lookup key, fingerprint and timing
   * @returns one of the four admission outcomes (or `unknown` for an `onlyKnown` admit of a key it has no live record of)
   * @example
   * const r = await stub.admit({ lookup, fingerprint, leaseMs: 30_000, ttlMs: 86_400_000, waitMs: 0 })
   * if (r.kind === 'new') { ... run, then stub.commit({ lookup, token: r.token, reply, ttlMs }) }
   */
  async admit(request: AdmitRequest): Promise<AdmitResult> {
    this.#usable()
    const deadline = Date.now() + request.waitMs
    for (;;) {
      const { result, counted } = this.#records.admit(request)
      if (result.kind !== 'in_flight') {
        if (counted) this.#counters.admitted(Date.now())
        else this.#counters.count(result.kind, Date.now())
        return result
      }
      const now = Date.now()
      if (now >= deadline) {
        this.#counters.count('in_flight', Date.now())
        return result
      }
      // Wake on commit/release, when the lease runs out, or at the deadline.
      await this.#waiters.waitFor(request.lookup, Math.min(deadline - now, result.retryAfterMs))
    }
  }

  /**
   * Stores the reply of an admitted request and flips it to `committed`, in
   * one transaction; waiting duplicates are woken and replay it. Only the
   * holder of the current lease may commit. Committing again with the same
   * token succeeds without change, so a commit whose answer was lost can be
   * retried safely.
   *
   * @param request - lookup key, lease token and the reply
   * @returns `{ ok: true }`, or why the commit was refused
   * @example
   * await stub.commit({ lookup, token, ttlMs, reply: { status: 201, headers: [], body: new Uint8Array() } })
   */
  async commit(request: CommitRequest): Promise<CommitResult> {
    this.#usable()
    const result = this.#records.commit(request)
    if (result.ok) {
      const { provisional = false, leaseMs = 30_000 } = request
      await this.#scheduleAlarm(provisional ? Date.now() + leaseMs : result.expiresAt)
      this.#waiters.wake(request.lookup)
    }
    return result
  }

  /**
   * Gives an admitted record back before its commit point (the handler failed
   * or answered a retryable status), so the next retry runs it again with the
   * same request id. A no-op unless `token` holds the lease.
   *
   * @param lookup - lookup key
   * @param token - lease token from `admit`
   * @returns whether the record was released
   * @example
   * await stub.release(lookup, token)
   */
  async release(lookup: string, token: string, sends?: number): Promise<boolean> {
    this.#usable()
    const changed = this.ctx.storage.transactionSync(() => this.#records.release(lookup, token, sends, Date.now()))
    if (changed !== 0) this.#waiters.wake(lookup)
    if (changed < 0) await this.#scheduleAlarm(Date.now() + MIN_ALARM_GAP_MS)
    return changed > 0
  }

  /**
   * What this object has answered since it first counted, kept in its storage: admits (new keys), replays,
   * conflicts (409: still in flight) and mismatches (422).
   * @example
   * await stub.stats() // { admits: 120, replays: 31, conflicts: 2, mismatches: 1, since: 1795… }
   */
  async stats(): Promise<AdmitCounts> {
    return this.#counters.totals()
  }

  /** Takes an object's or an isolate's totals into the status page's figures (on the status object; counters.ts). */
  async reportStatus(report: StatusReport): Promise<void> {
    this.#usable()
    if (this.#counters.receive(report)) await this.#scheduleAlarm(Date.now() + MIN_ALARM_GAP_MS) // the directory pushes
  }

  /** The status page's figures, summed over every reporter, after taking in `report` if given (counters.ts). */
  async readStatus(report?: StatusReport): Promise<StatusSnapshot> {
    this.#usable()
    if (report && this.#counters.receive(report)) await this.#scheduleAlarm(Date.now() + MIN_ALARM_GAP_MS)
    return this.#counters.snapshot()
  }

  /**
   * The directory's word on this object's domains (from the status object's alarm; replica-sets.ts): each
   * domain set before `learnedAt` takes the pushed origins; a new replica joins and the alarm feeds it the log.
   *
   * @returns the pushed domains' status as they now stand
   * @example
   * await stub.adoptReplicaSets([{ domain: 'acct-1', origins, learnedAt }])
   */
  async adoptReplicaSets(pushes: ReplicaSetPush[]): Promise<DomainStatus[]> {
    this.#usable()
    const now = Date.now()
    const statuses = this.ctx.storage.transactionSync(() => {
      this.#counters.dueBy(now) // the status page hears of the change with the next alarm run
      return adoptReplicaSets({ sql: this.ctx.storage.sql, ordered: this.#ordered }, pushes, now)
    })
    await this.#scheduleAlarm(now + MIN_ALARM_GAP_MS)
    return statuses
  }

  /**
   * Log entries `from`…`to` (at most 1000) of an ordering domain, still kept, in order: for a replica that
   * answered `409` with `Once-Expected-Sequence` (DESIGN §6), sent before the Worker's own request again.
   * @example
   * const missing = await stub.logEntries('acct-1', 5, 7)
   */
  async logEntries(domain: string, from: number, to: number): Promise<LogEntry[]> {
    this.#usable()
    return this.#ordered.entries(domain, from, Math.min(to, from + 1000))
  }

  /**
   * Records replicas' answers to one sequence that came after the commit
   * (the replicas the client did not wait for), and the replicas that gave
   * none; compares them (seed 004) and reports the divergences, whose
   * replicas are now `suspect`.
   *
   * @param reference - the answer the client got, when the Worker reports it (kept as the slot's reference
   *   answer if its commit has not set one: two replicas are judged by it)
   * @returns divergences found
   * @example
   * const events = await stub.acknowledge('acct-1', 7, requestId, [{ origin: 'r2', status: 201, digest }], [])
   */
  async acknowledge(domain: string, sequence: number, requestId: string, acks: ReplicaAck[], failed: string[], reference?: ReplicaAck): Promise<DivergenceEvent[]> {
    this.#usable()
    const events = this.ctx.storage.transactionSync(() => {
      if (reference) this.#ordered.setReference(domain, sequence, reference)
      return this.#ordered.acknowledge(domain, sequence, requestId, acks, failed, Date.now())
    })
    if (failed.length > 0) await this.#scheduleAlarm(Date.now() + MIN_ALARM_GAP_MS)
    return events
  }

  /**
   * Every ordering domain this object holds: head sequence, where the log
   * begins, and each replica's state, acknowledged sequence and lag (for
   * the status page and operators).
   *
   * @example
   * const [domain] = await stub.domains() // { domain: 'acct-1', head: 42, replicas: [{ name: 'r1', state: 'active', acked: 42, lag: 0 }, …] }
   */
  async domains(): Promise<DomainStatus[]> {
    this.#usable()
    return this.#ordered.status()
  }

  /**
   * An operator's decision on a replica: clear `suspect` after repairing it
   * (it goes back to `lagging` and is caught up from the log before it is
   * `active` again), or take it out of rotation (`draining`).
   *
   * @returns false when there is no such replica
   * @example
   * await stub.setReplica('acct-1', 'r2', 'lagging') // repaired: catch it up
   */
  async setReplica(domain: string, name: string, state: ReplicaState): Promise<boolean> {
    this.#usable()
    const exists = this.#ordered.status().some((d) => d.domain === domain && d.replicas.some((r) => r.name === name))
    if (!exists) return false
    this.#ordered.setState(domain, name, state === 'active' ? 'lagging' : state, state === 'draining' ? DRAINED_BY_OPERATOR : 'set by an operator', Date.now())
    await this.#scheduleAlarm(Date.now() + MIN_ALARM_GAP_MS)
    return true
  }

  /**
   * An operator's lever for a pending ordered request that holds up its domain and no rule ends (see
   * {@link abandonEntry}): its slot becomes a no-op, its key's answer `request-abandoned`.
   * @example
   * await stub.abandon('acct-1', 42) // { abandoned: true, requestId: '01…' } or { abandoned: false, reason: '…' }
   */
  async abandon(domain: string, sequence: number): Promise<AbandonResult> {
    this.#usable()
    const result = await abandonEntry(this.#host(Date.now()), domain, sequence, Date.now())
    if (result.abandoned) await this.#scheduleAlarm(Date.now() + MIN_ALARM_GAP_MS) // the replicas get the no-op
    return result
  }

  /**
   * Accepts and stores nothing: Workers of the previous release call it for
   * a `dispatch()` behind `once()` while a rollout runs, and a `dispatch()`
   * stores no relay any more (the alarm cannot finish a handler for it).
   * Kept one release so those Workers do not fail; not in `StableAreaApi`.
   *
   * @returns true: the caller goes on sending, as it would have
   */
  async relay(_lookup: string, _token: string, _relay: unknown): Promise<boolean> {
    return true
  }

  /**
   * Extends a lease still held by `token`, for a handler that runs longer
   * than `leaseMs`: a live Worker keeps its record, a dead one stops renewing.
   * A lease that ran out but was not taken over is still held: only another
   * admission takes a record away, never the clock alone.
   *
   * @param lookup - lookup key
   * @param token - lease token from `admit`
   * @param leaseMs - new lease length from now
   * @returns false when the lease was lost (expired and taken over)
   * @example
   * await stub.renew(lookup, token, 30_000)
   */
  async renew(lookup: string, token: string, leaseMs: number): Promise<boolean> {
    this.#usable()
    const renew = `UPDATE records SET lease_until = ? WHERE lookup = ? AND token = ? AND (state = 'in_flight' OR provisional = 1)`
    return this.ctx.storage.sql.exec(renew, Date.now() + leaseMs, lookup, token).rowsWritten > 0
  }

  /**
   * Tells the state of one record, for operators and tests: what a support
   * engineer asks when a client says "my payment is stuck".
   *
   * @param lookup - lookup key (see `lookupKey`)
   * @returns the record's state, or null when there is none (or it expired)
   * @example
   * await stub.inspect(lookupKey(scope, 'order-17')) // { state: 'committed', status: 201, … }
   */
  async inspect(lookup: string): Promise<RecordInfo | null> {
    this.#usable()
    return this.#records.inspect(lookup, Date.now(), this.#waiters.count(lookup))
  }

  /**
   * Background work: deletes expired records with their chunks, resends
   * relays and feeds replicas, and sets the next alarm. A plain record's
   * lease that ran out stays with its holder until another attempt admits
   * the key, so a slow but live handler whose renewal came late still
   * commits; a relayed one is taken over once its lease ran out (its
   * request is resent with a lease of the alarm's own, and a late commit of
   * the Worker that held it is refused as `lease_lost`), as is an ordered
   * one by the catch-up. Idempotent, as alarms run at least once.
   */
  override async alarm(): Promise<void> {
    if (this.#misconfigured) return
    const now = Date.now()
    const sql = this.ctx.storage.sql
    // While this runs the runtime counts the alarm as set (it retries a throw): nothing else need set one.
    this.#alarmAt = now
    try {
      expireRecords(this.ctx.storage, now)
      // Relays whose Worker died: resend them, a few at a time (a Worker holds 6 connections; so does this object).
      const host: Resender = { storage: this.ctx.storage, records: this.#records, relays: this.#relays, health: this.#health, env: this.env, waiters: this.#waiters }
      await Promise.all(this.#relays.due(now, RESENDS_PER_ALARM).map((due) => resendRelay(host, due)))
      // Ordering domains: feed lagging and joining replicas from the log, finish what dead Workers left.
      await catchUpDomains(this.#host(now))
      this.ctx.storage.transactionSync(() => this.#ordered.prune(Date.now()))
      await this.#counters.report(this.ctx, this.env, () => this.#ordered.status())
      await spreadReplicaSets(this.ctx, this.env) // the status object's directory: new replica sets to quiet domains
    } finally {
      // Even after a throw (the runtime retries, then gives up): later schedules must not be skipped for good.
      this.#alarmAt = null
    }
    const at = Date.now()
    const next = nextAlarm(sql, [this.#relays.nextWake(), this.#counters.nextWake(), this.#ordered.nextWake(at), directoryWake(sql)])
    // Never at a time already past: a row kept alive by a lease would make the alarm fire in a loop.
    if (next !== null) await this.#scheduleAlarm(Math.max(next, at + MIN_ALARM_GAP_MS))
  }

  /** The object's tables, its commit (which wakes the key's waiting duplicates) and one transaction: for the alarm's catch-up and an operator's abandon. */
  #host(now: number): CatchUpHost {
    const commit = (request: CommitRequest) => {
      const result = this.#records.commit(request)
      if (result.ok) this.#waiters.wake(request.lookup)
      return result
    }
    return { ordered: this.#ordered, sql: this.ctx.storage.sql, env: this.env as unknown as Record<string, unknown>, commit, transact: (fn) => this.ctx.storage.transactionSync(fn), now }
  }

  get #relays(): Relays {
    return (this.#relaysTable ??= new Relays(this.ctx.storage.sql))
  }

  get #records(): Records {
    return (this.#recordsTable ??= new Records(
      this.ctx.storage,
      () => this.#relays,
      () => this.#ordered,
      (at) => void this.#scheduleAlarm(at).catch(() => {}),
    ))
  }

  get #ordered(): OrderedDomains {
    return (this.#orderedTable ??= new OrderedDomains(this.ctx.storage.sql))
  }

  /** Throws the misconfiguration found at start-up, if any; the message starts with {@link MISCONFIGURED}. */
  #usable(): void {
    if (this.#misconfigured) throw new Error(`${MISCONFIGURED} ${this.#misconfigured}`)
  }

  /** Sets the alarm to `at` unless it is already set earlier; writes storage only when it moves. */
  async #scheduleAlarm(at: number): Promise<void> {
    if (this.#alarmAt !== null && this.#alarmAt <= at) return
    this.#alarmAt = at
    try {
      await this.ctx.storage.setAlarm(at)
    } catch (err) {
      this.#alarmAt = null // not set after all: the next caller tries again
      throw err
    }
  }
}
