import { DurableObject } from 'cloudflare:workers'
import { v7 as uuidv7 } from 'uuid'
import { failover } from '../shared/failover.js'
import { OriginHealth } from '../shared/health.js'
import { resolveSecret } from '../shared/send.js'
import { type DueRelay, Relays } from './relays.js'
import { OrderedDomains } from './ordered.js'
import { catchUpDomains, storedFrom } from './catch-up.js'
import { migrate } from './schema.js'
import { Counters, type StatusReport, type StatusSnapshot } from './counters.js'
import { digestHex } from '../shared/digest.js'
import type {
  AdmitCounts,
  AdmitRequest,
  AdmitResult,
  CommitRequest,
  CommitResult,
  DivergenceEvent,
  DomainStatus,
  JsonValue,
  LogEntry,
  OrderedSlot,
  ReplicaAck,
  ReplicaState,
  RecordInfo,
  RelayInput,
  StableAreaApi,
  StoredReply,
} from './types.js'

/**
 * Largest body kept inline in a `records` row; bigger ones go to `reply_chunks` (a row holds at most 2 MB).
 *
 * @example
 * Math.ceil(body.byteLength / CHUNK_BYTES) // rows a large reply takes
 */
export const CHUNK_BYTES = 1024 * 1024

interface RecordRow extends Record<string, SqlStorageValue> {
  fingerprint: string
  request_id: string
  state: 'in_flight' | 'committed' | 'released'
  token: string | null
  attempt: number
  lease_until: number | null
  expires_at: number
  provisional: number
  status: number | null
  headers: string | null
  body: ArrayBuffer | null
  chunks: number
  args: string | null
  manual_encoding: number
  domain: string | null
  sequence: number | null
}

/**
 * The stable area (seed 003, Fig. 5): a SQLite-backed Durable Object holding
 * the table of processed requests, so that neither a Worker crash nor a
 * restart of the object itself loses what was committed.
 *
 * Callers reach it through small typed RPC methods. `admit` answers in one
 * round trip with one of `new`, `replay`, `in_flight` or `mismatch`;
 * `commit` stores the reply and flips the record to `committed` in one
 * transaction. The alarm deletes expired records and releases leases whose
 * Worker died.
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
  readonly #waiters = new Map<string, Set<() => void>>()

  /** Why this object cannot work (its class was migrated without SQLite storage), or null. */
  #misconfigured: string | null = null
  /** Health of the origins the alarm resends to, as this object has seen them. */
  readonly #health = new OriginHealth()
  #relaysTable: Relays | undefined
  /** What this object answered, counted in its storage with each admit (counters.ts), reported to the status object. */
  readonly #counters = new Counters(this.ctx.storage, (at) => void this.#scheduleAlarm(at).catch(() => {}))
  #orderedTable: OrderedDomains | undefined

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env)
    void ctx.blockConcurrencyWhile(async () => {
      try {
        migrate(ctx.storage)
      } catch (err) {
        // Not retryable: every call would fail the same way. Callers get a 500 that says so.
        if (!(ctx.storage as Partial<DurableObjectStorage>).sql || /SQL|sqlite/i.test(String(err))) {
          this.#misconfigured = `the StableArea class needs SQLite storage: declare it under new_sqlite_classes in a wrangler.toml migration (${String(err)})`
          return
        }
        throw err
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
   * @returns one of the four admission outcomes
   * @example
   * const r = await stub.admit({ lookup, fingerprint, leaseMs: 30_000, ttlMs: 86_400_000, waitMs: 0 })
   * if (r.kind === 'new') { ... run, then stub.commit({ lookup, token: r.token, reply, ttlMs }) }
   */
  async admit(request: AdmitRequest): Promise<AdmitResult> {
    this.#usable()
    const deadline = Date.now() + request.waitMs
    for (;;) {
      const result = this.#admitNow(request)
      if (result.kind !== 'in_flight') {
        this.#count(result.kind)
        return result
      }
      const now = Date.now()
      if (now >= deadline) {
        this.#count('in_flight')
        return result
      }
      // Wake on commit/release, when the lease runs out, or at the deadline.
      await this.#waitFor(request.lookup, Math.min(deadline - now, result.retryAfterMs))
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
    const result = this.#commitNow(request)
    if (result.ok) {
      const { provisional = false, leaseMs = 30_000 } = request
      await this.#scheduleAlarm(provisional ? Date.now() + leaseMs : result.expiresAt)
      this.#wake(request.lookup)
    }
    return result
  }

  #commitNow(request: CommitRequest): CommitResult {
    const { lookup, token, reply, ttlMs, provisional = false, leaseMs = 30_000, relay, order } = request
    const now = Date.now()
    const expiresAt = now + ttlMs
    const sql = this.ctx.storage.sql
    const chunks = reply.body.byteLength <= CHUNK_BYTES ? 0 : Math.ceil(reply.body.byteLength / CHUNK_BYTES)
    // A provisional commit keeps the lease (duplicates wait for the final reply while it lives); a final one ends it.
    const set = `state = 'committed', provisional = ?, lease_until = ?, expires_at = ?,
      status = ?, headers = ?, body = ?, chunks = ?, args = ?, manual_encoding = ?, committed_at = ?`
    const values = [
      provisional ? 1 : 0,
      provisional ? now + leaseMs : null,
      expiresAt,
      reply.status,
      JSON.stringify(reply.headers),
      chunks === 0 ? reply.body : null,
      chunks,
      reply.args === undefined ? null : JSON.stringify(reply.args),
      reply.encoded ? 1 : 0,
      now,
    ]
    const open = `lookup = ? AND token = ? AND (state = 'in_flight' OR provisional = 1)`

    // Fast path, one statement (two with a relay, in one transaction): the lease holder commits an inline reply.
    const update = () => sql.exec(`UPDATE records SET ${set} WHERE ${open} AND chunks = 0 AND sequence IS NULL`, ...values, lookup, token).rowsWritten > 0
    const fast =
      chunks === 0 &&
      !order &&
      (relay && !provisional ? this.ctx.storage.transactionSync(() => update() && (this.#relays.complete(lookup, relay.sends), true)) : update())
    if (!fast) {
      const row = this.#row(lookup)
      if (!row) return { ok: false, reason: 'missing' }
      if (row.token !== token) return { ok: false, reason: 'lease_lost' }
      if (row.state === 'committed' && row.provisional === 0) {
        // A retried commit whose first try landed (its answer was lost) succeeds again.
        return provisional ? { ok: false, reason: 'committed' } : { ok: true, expiresAt: row.expires_at }
      }
      let divergences: DivergenceEvent[] = []
      this.ctx.storage.transactionSync(() => {
        this.#deleteChunks(lookup)
        sql.exec(`UPDATE records SET ${set} WHERE ${open}`, ...values, lookup, token)
        if (relay && !provisional && row.domain === null) this.#relays.complete(lookup, relay.sends)
        if (row.domain !== null && row.sequence !== null && !provisional) {
          // The committed reply is the reference when too few replicas answered for a majority.
          this.#ordered.committed(row.domain, row.sequence, { origin: '', status: reply.status, digest: digestHex(reply.body) })
          divergences = this.#ordered.acknowledge(row.domain, row.sequence, order?.acks ?? [], order?.failed ?? [], row.request_id, now)
        }
        for (let i = 0; i < chunks; i++) {
          sql.exec('INSERT INTO reply_chunks (lookup, idx, data) VALUES (?, ?, ?)', lookup, i, reply.body.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES))
        }
      })
      if (divergences.length > 0) return { ok: true, expiresAt, divergences }
    }
    return { ok: true, expiresAt }
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
    const changed = this.ctx.storage.transactionSync(() => {
      // An ordered request is in the log and will be applied: it is never released. Its lease ends now, so the
      // alarm (or the client's retry) takes over at once.
      const ordered = this.ctx.storage.sql.exec(
        `UPDATE records SET lease_until = ? WHERE lookup = ? AND token = ? AND state = 'in_flight' AND sequence IS NOT NULL`,
        Date.now(),
        lookup,
        token,
      ).rowsWritten
      if (ordered > 0) return -1
      const n = this.ctx.storage.sql.exec(
        `UPDATE records SET state = 'released', token = NULL, lease_until = NULL
         WHERE lookup = ? AND token = ? AND state = 'in_flight'`,
        lookup,
        token,
      ).rowsWritten
      if (n > 0 && sends !== undefined) this.#relays.release(lookup, sends)
      return n
    })
    if (changed !== 0) this.#wake(lookup)
    if (changed < 0) await this.#scheduleAlarm(Date.now() + MIN_ALARM_GAP_MS)
    return changed > 0
  }

  /**
   * What this object has answered since it first counted: admits (new
   * keys), replays, conflicts (409: still in flight) and mismatches (422).
   * Kept in its storage, so a restart keeps them.
   *
   * @example
   * await stub.stats() // { admits: 120, replays: 31, conflicts: 2, mismatches: 1, since: 1795… }
   */
  async stats(): Promise<AdmitCounts> {
    return this.#counters.totals()
  }

  /** Takes an object's or an isolate's totals into the status page's figures (on the status object; counters.ts). */
  async reportStatus(report: StatusReport): Promise<void> {
    this.#usable()
    this.#counters.receive(report)
  }

  /** The status page's figures, summed over every reporter, after taking in `report` if given (counters.ts). */
  async readStatus(report?: StatusReport): Promise<StatusSnapshot> {
    this.#usable()
    if (report) this.#counters.receive(report)
    return this.#counters.snapshot()
  }

  #count(kind: AdmitResult['kind']): void {
    this.#counters.count(kind, Date.now())
  }

  /**
   * Log entries `from`…`to` of an ordering domain, for a replica that
   * answered `409` with `Once-Expected-Sequence` (DESIGN §6): the Worker
   * sends them in order, then its own request again.
   *
   * @param domain - the ordering domain
   * @param from - first sequence wanted
   * @param to - last sequence wanted
   * @returns the entries still kept, in order
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
   * @returns divergences found
   * @example
   * const events = await stub.acknowledge('acct-1', 7, requestId, [{ origin: 'r2', status: 201, digest }], [])
   */
  async acknowledge(domain: string, sequence: number, requestId: string, acks: ReplicaAck[], failed: string[]): Promise<DivergenceEvent[]> {
    this.#usable()
    const events = this.ctx.storage.transactionSync(() => this.#ordered.acknowledge(domain, sequence, acks, failed, requestId, Date.now()))
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
    this.#ordered.setState(domain, name, state === 'active' ? 'lagging' : state, `set by an operator`, Date.now())
    await this.#scheduleAlarm(Date.now() + MIN_ALARM_GAP_MS)
    return true
  }

  /**
   * Makes the relay of an admitted request durable after the admit, for a
   * handler that calls `dispatch()` itself (a route `once()` could not see
   * as proxied). Only the lease holder may; costs one round trip that
   * `proxy()` routes save by carrying the relay on the admit.
   *
   * @param lookup - lookup key
   * @param token - lease token from `admit`
   * @param relay - the request and how to reach its origins
   * @returns false when `token` no longer holds the record
   * @example
   * await stub.relay(lookup, token, { request, plan, key })
   */
  async relay(lookup: string, token: string, relay: RelayInput): Promise<boolean> {
    this.#usable()
    const now = Date.now()
    const row = this.#row(lookup)
    if (!row || row.token !== token || row.state !== 'in_flight') return false
    this.ctx.storage.transactionSync(() => this.#relays.start(lookup, row.request_id, relay, Math.max(0, row.expires_at - now), now))
    await this.#scheduleAlarm(row.lease_until ?? now)
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
    return (
      this.ctx.storage.sql.exec(
        `UPDATE records SET lease_until = ? WHERE lookup = ? AND token = ? AND (state = 'in_flight' OR provisional = 1)`,
        Date.now() + leaseMs,
        lookup,
        token,
      ).rowsWritten > 0
    )
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
    const row = this.#row(lookup)
    if (!row || !isLive(row, Date.now())) return null
    return {
      state: row.state,
      provisional: row.provisional === 1,
      requestId: row.request_id,
      attempt: row.attempt,
      leaseUntil: row.lease_until,
      expiresAt: row.expires_at,
      status: row.status,
      waiters: this.#waiters.get(lookup)?.size ?? 0,
    }
  }

  /**
   * Background work: deletes expired records with their chunks and sets the
   * next alarm. Leases are not taken here: a lease that ran out stays with
   * its holder until another attempt admits the key, so a slow but live
   * handler whose renewal came late still commits. Idempotent, as alarms run
   * at least once.
   */
  override async alarm(): Promise<void> {
    if (this.#misconfigured) return
    const now = Date.now()
    const sql = this.ctx.storage.sql
    // While this runs the runtime counts the alarm as set (it retries a throw): nothing else need set one.
    this.#alarmAt = now
    try {
      this.ctx.storage.transactionSync(() => {
        // Expired, and not kept by a running lease (a handler longer than the TTL), nor an ordered request still
        // pending: it is in the log and will be applied, and its TTL counts from its commit. Written so the indexes serve it.
        const expired = `expires_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1) AND NOT (state = 'in_flight' AND sequence IS NOT NULL)`
        sql.exec(`DELETE FROM reply_chunks WHERE lookup IN (SELECT lookup FROM records WHERE ${expired})`, now)
        sql.exec(`DELETE FROM relays WHERE lookup IN (SELECT lookup FROM records WHERE ${expired})`, now)
        sql.exec(`DELETE FROM records WHERE ${expired}`, now)
      })
      // Relays whose Worker died: resend them, a few at a time (a Worker holds 6 connections; so does this object).
      await Promise.all(this.#relays.due(now, RESENDS_PER_ALARM).map((due) => this.#resend(due)))
      // Ordering domains: feed lagging and joining replicas from the log, finish what dead Workers left.
      await catchUpDomains({
        ordered: this.#ordered,
        sql,
        env: this.env as unknown as Record<string, unknown>,
        health: this.#health,
        commit: (request: CommitRequest) => {
          const result = this.#commitNow(request)
          if (result.ok) this.#wake(request.lookup)
          return result
        },
        transact: (fn) => this.ctx.storage.transactionSync(fn),
        now,
      })
      this.ctx.storage.transactionSync(() => this.#ordered.prune(Date.now()))
      await this.#counters.report(this.ctx, this.env, () => this.#ordered.status())
    } finally {
      // Even after a throw (the runtime retries, then gives up): later schedules must not be skipped for good.
      this.#alarmAt = null
    }
    const at = Date.now()
    const next = minOf(
      minOf(
        minOf(
          sql.exec<{ at: number | null }>(
            `SELECT min(expires_at) AS at FROM records WHERE (lease_until IS NULL OR lease_until <= expires_at) AND NOT (state = 'in_flight' AND sequence IS NOT NULL)`,
          ).one().at,
          sql.exec<{ at: number | null }>(`SELECT min(lease_until) AS at FROM records WHERE lease_until > expires_at`).one().at,
        ),
        minOf(this.#relays.nextWake(), this.#counters.nextWake()),
      ),
      minOf(
        this.#ordered.nextWake(at),
        sql
          .exec<{ at: number | null }>(
            `SELECT min(max(rec.lease_until, coalesce(l.retry_at, 0))) AS at FROM records rec JOIN log l ON l.domain = rec.domain AND l.sequence = rec.sequence
             WHERE rec.state = 'in_flight' AND rec.sequence IS NOT NULL`,
          )
          .one().at,
      ),
    )
    // Never at a time already past: a row kept alive by a lease would make the alarm fire in a loop.
    if (next !== null) await this.#scheduleAlarm(Math.max(next, at + MIN_ALARM_GAP_MS))
  }

  /**
   * Resends a relay left `processing` by a Worker that died (seed 003's
   * backup relay): takes the record over with a lease of its own, fails over
   * across the stored origins with the same request id, and commits the
   * first final answer, so a client that comes back later gets it as a
   * replay. A round that gets none is retried with backoff; after
   * {@link MAX_RESENDS} rounds the key is released for the client's retry.
   */
  async #resend(due: DueRelay): Promise<void> {
    const { lookup, plan } = due
    const now = Date.now()
    const token = crypto.randomUUID()
    const leaseUntil = now + plan.deadlineMs + RESEND_LEASE_MARGIN_MS
    // The takeover is guarded on the dead Worker's token: a client retry that took the key first wins.
    const took = this.ctx.storage.sql.exec(
      `UPDATE records SET token = ?, attempt = attempt + 1, lease_until = ?
       WHERE lookup = ? AND state = 'in_flight' AND token IS ? AND lease_until <= ?`,
      token,
      leaseUntil,
      lookup,
      due.token,
      now,
    ).rowsWritten
    if (took === 0) return
    const outcome = await failover({
      origins: plan.origins,
      request: due.request,
      wire: { requestId: due.requestId, key: due.key },
      health: this.#health,
      secret: resolveSecret(plan.secret, this.env),
      timeoutMs: plan.timeoutMs,
      deadline: now + plan.deadlineMs,
      maxAttempts: plan.maxAttempts,
      maxResponseBytes: plan.maxResponseBytes,
      firstAttempt: due.sends + 1,
    })
    const sends = due.sends + outcome.attempts.length
    // An answer is applied by the one rule (failover returns no other): commit it, whatever its status.
    if (outcome.kind === 'answer') {
      const committed = this.#commitNow({ lookup, token, reply: storedFrom(outcome, plan.reply), ttlMs: due.ttlMs, relay: { sends } })
      if (committed.ok) this.#wake(lookup)
      return
    }
    console.warn(`hono-once: resend of ${due.requestId} got no final answer (round ${due.resends + 1}): ${outcome.detail}`)
    this.ctx.storage.transactionSync(() => {
      if (due.resends + 1 >= MAX_RESENDS) {
        this.ctx.storage.sql.exec(`UPDATE records SET state = 'released', token = NULL, lease_until = NULL WHERE lookup = ? AND token = ?`, lookup, token)
        this.#relays.release(lookup, sends)
      } else {
        // The key is free for a client retry meanwhile; the alarm tries again after a backoff.
        this.ctx.storage.sql.exec(`UPDATE records SET lease_until = ? WHERE lookup = ? AND token = ?`, Date.now(), lookup, token)
        this.#relays.defer(lookup, sends, Date.now() + Math.min(60_000, 2000 * 2 ** due.resends))
      }
    })
    this.#wake(lookup)
  }

  get #relays(): Relays {
    return (this.#relaysTable ??= new Relays(this.ctx.storage.sql))
  }

  get #ordered(): OrderedDomains {
    return (this.#orderedTable ??= new OrderedDomains(this.ctx.storage.sql))
  }

  #admitNow(request: AdmitRequest): AdmitResult {
    const { lookup, fingerprint, leaseMs, ttlMs } = request
    const now = Date.now()
    const token = crypto.randomUUID()
    const leaseUntil = now + leaseMs
    const expiresAt = now + ttlMs

    // Fast path: a key this object has no record of. One statement, or two in one transaction with a relay.
    const requestId = uuidv7()
    const insert = () =>
      this.ctx.storage.sql.exec(
        `INSERT INTO records (lookup, fingerprint, request_id, state, token, attempt, lease_until, expires_at, created_at)
         VALUES (?, ?, ?, 'in_flight', ?, 1, ?, ?, ?) ON CONFLICT (lookup) DO NOTHING`,
        lookup,
        fingerprint,
        requestId,
        token,
        leaseUntil,
        expiresAt,
        now,
      ).rowsWritten > 0
    const { relay, domain } = request
    if (domain !== undefined && !relay) throw new Error('hono-once: an ordered admit needs the relay plan of its replicas')
    let order: OrderedSlot | undefined
    const fresh = relay
      ? this.ctx.storage.transactionSync(() => {
          if (!insert()) return false
          if (domain === undefined) this.#relays.start(lookup, requestId, relay, ttlMs, now)
          else order = this.#order(lookup, domain, requestId, relay, now)
          return true
        })
      : insert()
    if (fresh) {
      // A relayed request needs the alarm when its lease ends (its Worker may die); any other only at expiry.
      void this.#scheduleAlarm(relay ? leaseUntil : expiresAt).catch(() => {})
      if (!relay) return { kind: 'new', requestId, token, attempt: 1, leaseUntil }
      return { kind: 'new', requestId, token, attempt: 1, leaseUntil, sends: 0, ...(order ? { order } : {}) }
    }

    const row = this.#row(lookup)
    const live = row !== undefined && isLive(row, now)
    const leased = live && (row.lease_until ?? 0) > now

    // While a record lives its key means one request: another body is 422, whatever the record's
    // state (in flight, committed, released after a failure, or left by a dead Worker), since
    // the first attempt may have taken effect.
    if (live && row.fingerprint !== fingerprint) return { kind: 'mismatch', requestId: row.request_id }
    if (live && row.state === 'committed') {
      if (row.provisional === 0) return this.#replay(lookup, row)
      // Past the roll-forward point without its final reply: wait for it while the lease lives;
      // once it ran out the original died, and the placeholder becomes the final reply.
      if (leased) return { kind: 'in_flight', requestId: row.request_id, retryAfterMs: (row.lease_until ?? now) - now }
      this.ctx.storage.sql.exec(
        `UPDATE records SET provisional = 0, token = NULL, lease_until = NULL WHERE lookup = ? AND provisional = 1`,
        lookup,
      )
      return this.#replay(lookup, { ...row, provisional: 0 })
    }
    if (live && row.state === 'in_flight' && leased) {
      return { kind: 'in_flight', requestId: row.request_id, retryAfterMs: (row.lease_until ?? now) - now }
    }

    // Free: never seen, expired, released, or its lease ran out. A retry of
    // the same request keeps its request id; a key whose record expired starts afresh.
    const id = live ? row.request_id : requestId
    const attempt = live ? row.attempt + 1 : 1
    let sends = 0
    this.ctx.storage.transactionSync(() => {
      if (relay && domain === undefined) {
        // An expired record's relay belonged to another logical request: start afresh.
        if (!live) this.ctx.storage.sql.exec('DELETE FROM relays WHERE lookup = ?', lookup)
        sends = this.#relays.start(lookup, id, relay, ttlMs, now)
      }
      if (row && row.chunks > 0) this.#deleteChunks(lookup)
      this.ctx.storage.sql.exec(
        `UPDATE records SET fingerprint = ?, request_id = ?, state = 'in_flight', token = ?, attempt = ?,
           lease_until = ?, expires_at = ?, provisional = 0, status = NULL, headers = NULL, body = NULL,
           chunks = 0, args = NULL, manual_encoding = 0, created_at = ?, committed_at = NULL
         WHERE lookup = ?`,
        fingerprint,
        id,
        token,
        attempt,
        leaseUntil,
        expiresAt,
        now,
        lookup,
      )
      if (relay && domain !== undefined) {
        // An ordered request keeps its slot on every attempt: it is in the log and is never given a second one.
        if (live && row.sequence !== null && row.domain === domain) {
          this.ctx.storage.sql.exec('UPDATE records SET domain = ?, sequence = ? WHERE lookup = ?', domain, row.sequence, lookup)
          order = this.#ordered.slot(domain, row.sequence)
        } else {
          order = this.#order(lookup, domain, id, relay, now)
        }
      }
    })
    void this.#scheduleAlarm(relay ? leaseUntil : expiresAt).catch(() => {})
    if (!relay) return { kind: 'new', requestId: id, token, attempt, leaseUntil }
    return { kind: 'new', requestId: id, token, attempt, leaseUntil, sends, ...(order ? { order } : {}) }
  }

  /** Gives a new ordered request its slot: the domain's next sequence, in the log, on its record. */
  #order(lookup: string, domain: string, requestId: string, relay: RelayInput, now: number): OrderedSlot {
    const slot = this.#ordered.append(domain, lookup, requestId, relay, now)
    this.ctx.storage.sql.exec('UPDATE records SET domain = ?, sequence = ? WHERE lookup = ?', domain, slot.sequence, lookup)
    return slot
  }

  #replay(lookup: string, row: RecordRow): AdmitResult {
    return { kind: 'replay', requestId: row.request_id, reply: this.#reply(lookup, row), expiresAt: row.expires_at }
  }

  #row(lookup: string): RecordRow | undefined {
    return this.ctx.storage.sql
      .exec<RecordRow>(
        `SELECT fingerprint, request_id, state, token, attempt, lease_until, expires_at, provisional, status, headers, body, chunks, args,
           manual_encoding, domain, sequence
         FROM records WHERE lookup = ?`,
        lookup,
      )
      .toArray()[0]
  }

  #reply(lookup: string, row: RecordRow): StoredReply {
    let body: Uint8Array
    if (row.chunks > 0) {
      const parts = this.ctx.storage.sql
        .exec<{ data: ArrayBuffer }>('SELECT data FROM reply_chunks WHERE lookup = ? ORDER BY idx', lookup)
        .toArray()
      body = new Uint8Array(parts.reduce((n, p) => n + p.data.byteLength, 0))
      let at = 0
      for (const { data } of parts) {
        body.set(new Uint8Array(data), at)
        at += data.byteLength
      }
    } else {
      body = new Uint8Array(row.body ?? new ArrayBuffer(0))
    }
    const reply: StoredReply = {
      status: row.status ?? 500,
      headers: JSON.parse(row.headers ?? '[]') as [string, string][],
      body,
    }
    if (row.args !== null) reply.args = JSON.parse(row.args) as JsonValue
    if (row.manual_encoding === 1) reply.encoded = true
    return reply
  }

  /** Throws the misconfiguration found at start-up, if any; the message starts with {@link MISCONFIGURED}. */
  #usable(): void {
    if (this.#misconfigured) throw new Error(`${MISCONFIGURED} ${this.#misconfigured}`)
  }

  #deleteChunks(lookup: string): void {
    this.ctx.storage.sql.exec('DELETE FROM reply_chunks WHERE lookup = ?', lookup)
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

  #waitFor(lookup: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiters.get(lookup)
      if (!set) this.#waiters.set(lookup, (set = new Set()))
      const waiters = set
      const done = (): void => {
        clearTimeout(timer)
        waiters.delete(done)
        if (waiters.size === 0) this.#waiters.delete(lookup)
        resolve()
      }
      const timer = setTimeout(done, Math.max(1, ms))
      waiters.add(done)
    })
  }

  #wake(lookup: string): void {
    for (const done of [...(this.#waiters.get(lookup) ?? [])]) done()
  }
}

/**
 * Prefix of the message of an error the object throws when it cannot work
 * at all (e.g. declared without SQLite storage). Callers answer it with a
 * non-retryable 500 rather than a 503 that clients would retry forever.
 *
 * @example
 * if (String(err).includes(MISCONFIGURED)) return problem('misconfigured', …)
 */
export const MISCONFIGURED = 'hono-once misconfigured:'


/** The alarm is never set closer than this to now, so a row due right away cannot make it spin. */
const MIN_ALARM_GAP_MS = 1000

/** Relays one alarm run resends at most (the rest wait for the next run). */
const RESENDS_PER_ALARM = 4

/** Rounds of resends the alarm makes before it gives the key back to the client's retry. */
const MAX_RESENDS = 5

/** The lease the alarm holds while resending: the plan's deadline plus this. */
const RESEND_LEASE_MARGIN_MS = 5000

function minOf(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b)
}

/** A record counts until it expires; a running one never expires under its lease, even with a TTL shorter than the handler. */
function isLive(row: RecordRow, now: number): boolean {
  // An admitted ordered request lives until its commit, whatever its TTL: a retry waits for it or replays it.
  if (row.state === 'in_flight' && row.sequence !== null) return true
  return row.expires_at > now || (row.state === 'in_flight' && (row.lease_until ?? 0) > now)
}
