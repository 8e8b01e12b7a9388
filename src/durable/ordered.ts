import { findDivergences, referenceOf } from './divergence.js'
import { noteWrittenPlan, replicaSetOf, syncReplicas } from './replica-sets.js'
import { pruneLog } from './prune.js'
import { missesOf } from '../shared/outcome.js'
import { type DivergenceEvent, type DomainStatus, type LogEntry, MAX_LIVE_FILL, type OrderedSlot, type RelayInput, type RelayPlan, type ReplicaAck, type ReplicaState, type ReplicaView } from './types.js'

/**
 * SQL for the last sequence of domain `d` the alarm may send: the head, or
 * just before the first entry whose record a live Worker holds. `now` names
 * the parameter the query binds to the current time.
 */
const feedable = (now: `?${number}`): string => `coalesce((SELECT min(rec.sequence) - 1 FROM records rec
  WHERE rec.domain = d.domain AND rec.state = 'in_flight' AND rec.lease_until > ${now}), d.next - 1)`

/** The alarm's first backoff per replica and entry; it doubles up to {@link MAX_BACKOFF_MS} (DESIGN §6). */
const FIRST_BACKOFF_MS = 2000
/** The longest backoff between the alarm's sends of one entry to one replica. */
const MAX_BACKOFF_MS = 300_000

/** SHA-256 of an empty body: the digest of a no-op slot's answer. */
const EMPTY_DIGEST = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

interface ReplicaRow extends Record<string, SqlStorageValue> {
  name: string
  url: string
  state: ReplicaState
  acked: number
  reason: string | null
  failures: number
  next_at: number | null
}

interface LogRow extends Record<string, SqlStorageValue> {
  sequence: number
  request_id: string
  lookup: string
  method: string
  path: string
  headers: string
  body: ArrayBuffer | null
  key: string
  noop: number
  state: 'pending' | 'committed'
  rounds: number
  created_at: number
}

/**
 * The ordered half of the stable area (seeds 000/001, 002): one object per
 * ordering domain assigns each logical request the domain's next sequence
 * and appends it to the log in the same transaction as its admit; it keeps
 * each replica's progress and answers, and feeds replicas that lag or join
 * from the log. All methods are synchronous SQL, to be called inside the
 * object's transactions.
 *
 * @example
 * const ordered = new OrderedDomains(ctx.storage.sql)
 * const slot = ordered.append('acct-1', lookup, requestId, relay, Date.now())
 */
export class OrderedDomains {
  constructor(private readonly sql: SqlStorage) {}

  /**
   * Gives `requestId` the domain's next sequence and appends it to the log;
   * brings the replica set in line with the plan's origins when they changed.
   *
   * @returns the slot, with the replicas to send to
   */
  append(domain: string, lookup: string, requestId: string, relay: RelayInput, now: number): OrderedSlot {
    const view = this.#view(domain)
    // A changed plan, or the first write since a push set the origins (it confirms them, or undoes the push).
    if (view.plan !== JSON.stringify(relay.plan) || view.pushed) {
      noteWrittenPlan(this.sql, domain, view.plan, relay.plan, now)
      syncReplicas(this.sql, domain, relay.plan, view.next, now)
    }
    const sequence = view.next
    const { request, key } = relay
    this.sql.exec(
      `INSERT INTO log (domain, sequence, request_id, lookup, method, path, headers, body, key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      domain,
      sequence,
      requestId,
      lookup,
      request.method,
      request.path,
      JSON.stringify(request.headers),
      request.body,
      key,
      now,
    )
    this.sql.exec('UPDATE domains SET next = ? WHERE domain = ?', sequence + 1, domain)
    return { domain, sequence, replicas: this.replicas(domain) }
  }

  /** The slot of an entry already in the log (a retry taking over), with the replicas as they stand. */
  slot(domain: string, sequence: number): OrderedSlot {
    return { domain, sequence, replicas: this.replicas(domain) }
  }

  /** The replicas of `domain` with their state and acknowledged sequence. */
  replicas(domain: string): ReplicaView[] {
    return this.#replicaRows(domain).map((r) => ({ name: r.name, url: r.url, state: r.state, acked: r.acked }))
  }

  /**
   * Log entries `from`…`to` of a domain, in order, for a replica that must catch up; with `maxBytes`, only as many
   * as fit in that many body bytes (always the first), so a batch of large requests does not fill the object's memory.
   */
  entries(domain: string, from: number, to: number, maxBytes?: number): LogEntry[] {
    const rows =
      maxBytes === undefined
        ? this.sql.exec<LogRow>('SELECT * FROM log WHERE domain = ? AND sequence BETWEEN ? AND ? ORDER BY sequence', domain, from, to)
        : this.sql.exec<LogRow>(
            `SELECT * FROM (SELECT *, sum(coalesce(length(body), 0)) OVER (ORDER BY sequence) AS upto FROM log WHERE domain = ? AND sequence BETWEEN ? AND ?)
             WHERE upto <= ? OR sequence = ? ORDER BY sequence`,
            domain,
            from,
            to,
            maxBytes,
            from,
          )
    return rows.toArray().map(toEntry)
  }

  /**
   * Records replicas' answers to `sequence`: their progress moves on (a
   * replica applies in order, so an answer to `sequence` means everything
   * before it is applied too), and answers are compared. With three or
   * more answers the majority decides; with two, the committed reply's
   * digest (the log entry's reference answer) does. A replica that differs becomes `suspect`.
   *
   * @returns the divergences found
   */
  acknowledge(domain: string, sequence: number, requestId: string, acks: ReplicaAck[], failed: string[], now: number): DivergenceEvent[] {
    for (const ack of acks) {
      this.sql.exec(
        `INSERT INTO results (domain, sequence, origin, status, digest) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (domain, sequence, origin) DO UPDATE SET status = excluded.status, digest = excluded.digest`,
        domain,
        sequence,
        ack.origin,
        ack.status,
        ack.digest,
      )
      this.sql.exec(
        `UPDATE replicas SET acked = max(acked, ?), failures = 0, next_at = NULL, updated_at = ? WHERE domain = ? AND name = ? AND state != 'stale'`,
        sequence,
        now,
        domain,
        ack.origin,
      )
    }
    // A replica that answered says what (refused for good, a conflict), else it gave none (missedBy, shared/outcome.ts).
    for (const [name, why] of missesOf(failed)) {
      this.sql.exec(
        `UPDATE replicas SET state = 'lagging', reason = ?, updated_at = ? WHERE domain = ? AND name = ? AND state = 'active' AND acked < ?`,
        why ?? `no answer to sequence ${sequence}`,
        now,
        domain,
        name,
        sequence,
      )
    }
    return findDivergences(this.sql, domain, sequence, requestId, now, () => this.plan(domain)?.ackQuorum ?? 1)
  }

  /** Marks a log entry committed (its reply is stored), keeping the reply's digest as the reference answer. */
  committed(domain: string, sequence: number, reference?: ReplicaAck): void {
    // A no-op slot keeps the no-op's answer as its reference: the 502 the client got is not what replicas answer.
    this.sql.exec(
      `UPDATE log SET state = 'committed',
         ref_status = CASE WHEN noop = 1 THEN ref_status ELSE coalesce(?1, ref_status) END,
         ref_digest = CASE WHEN noop = 1 THEN ref_digest ELSE coalesce(?2, ref_digest) END
       WHERE domain = ?3 AND sequence = ?4`,
      reference?.status ?? null,
      reference?.digest ?? null,
      domain,
      sequence,
    )
  }

  /**
   * The answer a slot's client got (its reference answer, which two replicas are judged by), as the Worker reports
   * it with its replicas' answers before or without its commit; kept only when the slot has none yet.
   */
  setReference(domain: string, sequence: number, reference: ReplicaAck): void {
    this.sql.exec(
      `UPDATE log SET ref_status = ?, ref_digest = ? WHERE domain = ? AND sequence = ? AND ref_status IS NULL AND noop = 0`,
      reference.status,
      reference.digest,
      domain,
      sequence,
    )
  }

  /** A slot's reference answer (status and body digest), if it has one. */
  reference(domain: string, sequence: number): { status: number; digest: string } | undefined {
    return referenceOf(this.sql, domain, sequence)
  }

  /** Turns a slot no replica could apply into a no-op every replica records as such (seed 002's null message). */
  abandon(domain: string, sequence: number): void {
    // What every replica answers a no-op with (204, empty) is the slot's reference answer from now on.
    this.sql.exec(
      `UPDATE log SET noop = 1, state = 'committed', ref_status = 204, ref_digest = ? WHERE domain = ? AND sequence = ?`,
      EMPTY_DIGEST,
      domain,
      sequence,
    )
  }

  /**
   * Notes an alarm round in which every replica in rotation refused
   * `sequence` for a reason that will not pass by itself; returns since
   * when they have (the first such round).
   */
  refusedSince(domain: string, sequence: number, now: number): number {
    return this.sql
      .exec<{ since: number }>('UPDATE log SET refused_since = coalesce(refused_since, ?) WHERE domain = ? AND sequence = ? RETURNING refused_since AS since', now, domain, sequence)
      .one().since
  }

  /** A round of the alarm could not finish `sequence`: the next one waits, from 2 s doubling to 5 minutes. */
  deferEntry(domain: string, sequence: number, now: number): void {
    this.sql.exec(
      `UPDATE log SET rounds = rounds + 1, retry_at = ?1 + min(?2, ?3 * (1 << min(rounds, 20))) WHERE domain = ?4 AND sequence = ?5`,
      now,
      MAX_BACKOFF_MS,
      FIRST_BACKOFF_MS,
      domain,
      sequence,
    )
  }

  /** Whether any replica has applied `sequence`. */
  appliedAnywhere(domain: string, sequence: number): boolean {
    return this.sql.exec('SELECT 1 FROM replicas WHERE domain = ? AND acked >= ? LIMIT 1', domain, sequence).toArray().length > 0
  }

  /** Changes a replica's state (catch-up done, a gap it cannot fill, an operator's decision). */
  setState(domain: string, name: string, state: ReplicaState, reason: string | null, now: number, acked?: number): void {
    this.sql.exec(
      `UPDATE replicas SET state = ?, reason = ?, acked = coalesce(?, acked), updated_at = ? WHERE domain = ? AND name = ?`,
      state,
      reason,
      acked ?? null,
      now,
      domain,
      name,
    )
  }

  /** A replica applied `sequence` (its record of it may be gone): its progress moves on, no answer to compare. */
  advance(domain: string, name: string, sequence: number, now: number): void {
    this.sql.exec('UPDATE replicas SET acked = max(acked, ?), failures = 0, next_at = NULL, updated_at = ? WHERE domain = ? AND name = ?', sequence, now, domain, name)
  }

  /**
   * Joining and lagging replicas that have every entry the alarm may feed them (up to the head, or just before the
   * first entry a live Worker holds) become `active` again; with `only`, the one the alarm fed up to `only.head`
   * (what it might feed when its run began: writes admitted since, in a busy domain, do not keep it out). What
   * they have not had comes to them as to any active replica that missed an entry: gap fill, or the alarm's feed.
   */
  promote(now: number, only?: { domain: string; name: string; head: number }): void {
    // With `only`, no further behind than a live write fills in (MAX_LIVE_FILL): else the first write would fail there.
    const which = only
      ? `domain = ?2 AND name = ?3 AND acked >= ?4 AND (SELECT ${feedable('?1')} FROM domains d WHERE d.domain = ?2) - acked <= ${MAX_LIVE_FILL}`
      : `acked >= (SELECT ${feedable('?1')} FROM domains d WHERE d.domain = replicas.domain)`
    const params = only ? [only.domain, only.name, only.head] : []
    this.sql.exec(`UPDATE replicas SET state = 'active', reason = NULL, updated_at = ?1 WHERE state IN ('joining', 'lagging') AND ${which}`, now, ...params)
  }

  /**
   * A catch-up attempt failed: back off before the next (from 2 s, doubling,
   * at most 5 minutes). A failure is no progress: it leaves `updated_at`
   * alone, so a dead replica ages past the log's retention and turns `stale`.
   */
  deferReplica(domain: string, name: string, now: number): void {
    const row = this.sql
      .exec<{ failures: number }>(`UPDATE replicas SET failures = failures + 1 WHERE domain = ? AND name = ? RETURNING failures`, domain, name)
      .toArray()[0]
    const backoff = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.min(20, (row?.failures ?? 1) - 1))
    this.sql.exec(
      `UPDATE replicas SET next_at = ?1, updated_at = CASE WHEN state = 'active' THEN ?2 ELSE updated_at END,
         state = CASE WHEN state = 'active' THEN 'lagging' ELSE state END WHERE domain = ?3 AND name = ?4`,
      now + backoff,
      now,
      domain,
      name,
    )
  }

  /**
   * Replicas that should be fed from the log now: behind, not suspect or
   * draining, not backing off. "Behind" stops before the first entry whose
   * record a live Worker still holds (it is sending that one itself: the
   * alarm does not race it), so `head` here is the last entry the alarm may send.
   */
  behind(now: number): { domain: string; replica: ReplicaView; head: number; prunedThrough: number }[] {
    return this.sql
      .exec<ReplicaRow & { domain: string; head: number; pruned_through: number }>(
        `SELECT r.domain, r.name, r.url, r.state, r.acked, r.reason, r.failures, r.next_at, ${feedable('?1')} AS head, d.pruned_through
         FROM replicas r JOIN domains d ON d.domain = r.domain
         WHERE r.state IN ('joining', 'active', 'lagging') AND r.acked < ${feedable('?1')} AND coalesce(r.next_at, 0) <= ?1 ORDER BY r.updated_at`,
        now,
      )
      .toArray()
      .map((r) => ({ domain: r.domain, replica: { name: r.name, url: r.url, state: r.state, acked: r.acked }, head: r.head, prunedThrough: r.pruned_through }))
  }

  /** When the alarm next has replica work: the earliest backoff end of a replica behind what it may be fed. */
  nextWake(now: number): number | null {
    return this.sql
      .exec<{ at: number | null }>(
        `SELECT min(coalesce(r.next_at, 0)) AS at FROM replicas r JOIN domains d ON d.domain = r.domain
         WHERE r.state IN ('joining', 'active', 'lagging') AND r.acked < ${feedable('?1')}`,
        now,
      )
      .one().at
  }

  /** The plan last seen for `domain` (for the alarm's sends), or undefined before any. */
  plan(domain: string): RelayPlan | undefined {
    const raw = this.sql.exec<{ plan: string | null }>('SELECT plan FROM domains WHERE domain = ?', domain).toArray()[0]?.plan
    return raw ? (JSON.parse(raw) as RelayPlan) : undefined
  }

  /**
   * Prunes log entries every active replica has acknowledged and that are
   * older than the plan's retention, with their answers.
   */
  prune(now: number): void {
    pruneLog(this.sql, now)
  }

  /** Every domain this object orders, with its replicas' state, progress and lag, and its replica set. */
  status(): DomainStatus[] {
    return this.sql
      .exec<{ domain: string; next: number; pruned_through: number; plan: string | null; plan_at: number; replaced: string | null; replaced_at: number | null }>(
        'SELECT domain, next, pruned_through, plan, plan_at, replaced, replaced_at FROM domains ORDER BY domain',
      )
      .toArray()
      .map((d) => ({
        domain: d.domain,
        replicaSet: replicaSetOf(d),
        head: d.next - 1,
        prunedThrough: d.pruned_through,
        replicas: this.sql
          .exec<ReplicaRow>('SELECT * FROM replicas WHERE domain = ? ORDER BY name', d.domain)
          .toArray()
          .map((r) => ({ name: r.name, url: r.url, state: r.state, acked: r.acked, lag: d.next - 1 - r.acked, reason: r.reason })),
      }))
  }

  /** The log entry of `sequence`, if still kept. */
  entry(domain: string, sequence: number): (LogEntry & { lookup: string; state: 'pending' | 'committed'; createdAt: number }) | undefined {
    const row = this.sql.exec<LogRow>('SELECT * FROM log WHERE domain = ? AND sequence = ?', domain, sequence).toArray()[0]
    return row ? { ...toEntry(row), lookup: row.lookup, state: row.state, createdAt: row.created_at } : undefined
  }

  /** The domain's next sequence and plan, and whether a push set its origins, read afresh (a cache here would outlive a rolled-back transaction). */
  #view(domain: string): { next: number; plan: string | null; pushed: boolean } {
    const row = this.sql
      .exec<{ next: number; plan: string | null; pushed: number }>('SELECT next, plan, pushed_from IS NOT NULL AS pushed FROM domains WHERE domain = ?', domain)
      .toArray()[0]
    if (!row) this.sql.exec('INSERT INTO domains (domain, next) VALUES (?, 1)', domain)
    return { next: row?.next ?? 1, plan: row?.plan ?? null, pushed: row?.pushed === 1 }
  }

  /** Whether the alarm may still feed `replica` of `domain`: listed at that URL, in a state that is fed (checked before each send). */
  feeds(domain: string, replica: { name: string; url: string }): boolean {
    return (
      this.sql
        .exec(`SELECT 1 FROM replicas WHERE domain = ? AND name = ? AND url = ? AND state IN ('joining', 'active', 'lagging')`, domain, replica.name, replica.url)
        .toArray().length > 0
    )
  }

  /** Brings the replica set in line with origins the directory pushed, without a write (replica-sets.ts). */
  adopt(domain: string, plan: RelayPlan, now: number): void {
    syncReplicas(this.sql, domain, plan, this.#view(domain).next, now)
  }

  #replicaRows(domain: string): ReplicaRow[] {
    return this.sql.exec<ReplicaRow>('SELECT * FROM replicas WHERE domain = ? ORDER BY rowid', domain).toArray()
  }
}

function toEntry(row: LogRow): LogEntry {
  return {
    sequence: row.sequence,
    requestId: row.request_id,
    key: row.key,
    request: { method: row.method, path: row.path, headers: JSON.parse(row.headers) as [string, string][], body: new Uint8Array(row.body ?? new ArrayBuffer(0)) },
    noop: row.noop === 1,
  }
}
