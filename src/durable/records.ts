import { v7 as uuidv7 } from 'uuid'
import { digestHex } from '../shared/digest.js'
import type { JsonValue, StoredReply } from '../shared/reply.js'
import type { OrderedDomains } from './ordered.js'
import type { Relays } from './relays.js'
import type { AdmitRequest, AdmitResult, CommitRequest, CommitResult, DivergenceEvent, OrderedSlot, RecordInfo, RelayInput } from './types.js'

/**
 * Largest body kept inline in a `records` row; bigger ones go to `reply_chunks` (a row holds at most 2 MB).
 *
 * @example
 * Math.ceil(body.byteLength / CHUNK_BYTES) // rows a large reply takes
 */
export const CHUNK_BYTES = 1024 * 1024

/** A `records` row as the object reads it. */
export interface RecordRow extends Record<string, SqlStorageValue> {
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
 * The `records` table and its `reply_chunks`: admission (who holds a key's
 * lease), the commit of a reply, and reading a reply back. Owns their SQL;
 * a relay's and an ordered slot's rows are written in the same transaction
 * through the modules that own those tables.
 */
export class Records {
  readonly #storage: DurableObjectStorage
  readonly #sql: SqlStorage
  readonly #relays: () => Relays
  readonly #ordered: () => OrderedDomains
  /** Asks for the alarm by `at` (never throws; the next caller retries a failed set). */
  readonly #schedule: (at: number) => void

  constructor(storage: DurableObjectStorage, relays: () => Relays, ordered: () => OrderedDomains, schedule: (at: number) => void) {
    this.#storage = storage
    this.#sql = storage.sql
    this.#relays = relays
    this.#ordered = ordered
    this.#schedule = schedule
  }

  /**
   * One admission attempt (no waiting): `new`, `replay`, `in_flight` or `mismatch` (see `StableArea.admit`).
   * `counted`: a new key's record was inserted, which counted the admit (the `records_count_admits` trigger).
   */
  admit(request: AdmitRequest): { result: AdmitResult; counted: boolean } {
    const result = this.#admit(request)
    return { result, counted: this.#inserted }
  }

  /** Whether the last {@link admit} inserted a record (set by #admit). */
  #inserted = false

  #admit(request: AdmitRequest): AdmitResult {
    this.#inserted = false
    const { lookup, fingerprint, leaseMs, ttlMs } = request
    const now = Date.now()
    const token = crypto.randomUUID()
    const leaseUntil = now + leaseMs
    const expiresAt = now + ttlMs

    // Fast path: a key this object has no record of. One statement, or two in one transaction with a relay.
    const requestId = uuidv7()
    const insert = () =>
      this.#sql.exec(
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
    const fresh = request.onlyKnown
      ? false
      : relay
      ? this.#storage.transactionSync(() => {
          if (!insert()) return false
          if (domain === undefined) this.#relays().start(lookup, requestId, relay, ttlMs, now)
          else order = this.#order(lookup, domain, requestId, relay, now)
          return true
        })
      : insert()
    if (fresh) {
      this.#inserted = true
      // A relayed request needs the alarm when its lease ends (its Worker may die); any other only at expiry.
      this.#schedule(relay ? leaseUntil : expiresAt)
      if (!relay) return { kind: 'new', requestId, token, attempt: 1, leaseUntil }
      return { kind: 'new', requestId, token, attempt: 1, leaseUntil, sends: 0, ...(order ? { order } : {}) }
    }

    const row = this.row(lookup)
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
      this.#sql.exec(
        `UPDATE records SET provisional = 0, token = NULL, lease_until = NULL WHERE lookup = ? AND provisional = 1`,
        lookup,
      )
      return this.#replay(lookup, { ...row, provisional: 0 })
    }
    if (live && row.state === 'in_flight' && leased) {
      return { kind: 'in_flight', requestId: row.request_id, retryAfterMs: (row.lease_until ?? now) - now }
    }
    // Nothing new for a request that cannot be sent: a key without a live record (or an ordered one without its slot).
    if (request.onlyKnown && (!live || (domain !== undefined && (row.sequence === null || row.domain !== domain)))) return { kind: 'unknown' }

    // Free: never seen, expired, released, or its lease ran out. A retry of
    // the same request keeps its request id; a key whose record expired starts afresh.
    const id = live ? row.request_id : requestId
    const attempt = live ? row.attempt + 1 : 1
    let sends: number | undefined
    this.#storage.transactionSync(() => {
      if (relay && domain === undefined) {
        // An expired record's relay belonged to another logical request: start afresh.
        if (!live) this.#sql.exec('DELETE FROM relays WHERE lookup = ?', lookup)
        sends = this.#relays().start(lookup, id, relay, ttlMs, now)
      } else if (live && domain === undefined) {
        // An earlier attempt's relay the alarm would still resend (a route that relayed then, not now: a deploy in
        // between): this attempt is told, so that it commits before it answers and its commit completes the relay.
        sends = this.#relays().pending(lookup)
      }
      if (row && row.chunks > 0) this.deleteChunks(lookup)
      this.#sql.exec(
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
          this.#sql.exec('UPDATE records SET domain = ?, sequence = ? WHERE lookup = ?', domain, row.sequence, lookup)
          // One sequence, one request at every replica: the retry sends the log's, whatever headers it came with.
          const logged = this.#ordered().entry(domain, row.sequence)
          order = { ...this.#ordered().slot(domain, row.sequence), ...(logged ? { request: logged.request } : {}) }
        } else {
          order = this.#order(lookup, domain, id, relay, now)
        }
      }
    })
    this.#schedule(relay ? leaseUntil : expiresAt)
    if (!relay) return { kind: 'new', requestId: id, token, attempt, leaseUntil, ...(sends !== undefined ? { sends } : {}) }
    return { kind: 'new', requestId: id, token, attempt, leaseUntil, sends: sends ?? 0, ...(order ? { order } : {}) }
  }

  /** Gives a new ordered request its slot: the domain's next sequence, in the log, on its record. */
  #order(lookup: string, domain: string, requestId: string, relay: RelayInput, now: number): OrderedSlot {
    const slot = this.#ordered().append(domain, lookup, requestId, relay, now)
    this.#sql.exec('UPDATE records SET domain = ?, sequence = ? WHERE lookup = ?', domain, slot.sequence, lookup)
    return slot
  }

  #replay(lookup: string, row: RecordRow): AdmitResult {
    return { kind: 'replay', requestId: row.request_id, reply: this.reply(lookup, row), expiresAt: row.expires_at }
  }

  row(lookup: string): RecordRow | undefined {
    return this.#sql
      .exec<RecordRow>(
        `SELECT fingerprint, request_id, state, token, attempt, lease_until, expires_at, provisional, status, headers, body, chunks, args,
           manual_encoding, domain, sequence
         FROM records WHERE lookup = ?`,
        lookup,
      )
      .toArray()[0]
  }

  reply(lookup: string, row: RecordRow): StoredReply {
    const body = row.chunks > 0 ? readChunks(this.#sql, 'reply_chunks', lookup) : new Uint8Array(row.body ?? new ArrayBuffer(0))
    const reply: StoredReply = {
      status: row.status ?? 500,
      headers: JSON.parse(row.headers ?? '[]') as [string, string][],
      body,
    }
    if (row.args !== null) reply.args = JSON.parse(row.args) as JsonValue
    if (row.manual_encoding === 1) reply.encoded = true
    return reply
  }

  commit(request: CommitRequest): CommitResult {
    const { lookup, token, reply, ttlMs, provisional = false, leaseMs = 30_000, relay, order } = request
    const now = Date.now()
    const expiresAt = now + ttlMs
    const sql = this.#sql
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
      (relay && !provisional ? this.#storage.transactionSync(() => update() && (this.#relays().complete(lookup, relay.sends), true)) : update())
    if (!fast) {
      const row = this.row(lookup)
      if (!row) return { ok: false, reason: 'missing' }
      if (row.token !== token) return { ok: false, reason: 'lease_lost' }
      if (row.state === 'committed' && row.provisional === 0) {
        // A retried commit whose first try landed (its answer was lost) succeeds again.
        return provisional ? { ok: false, reason: 'committed' } : { ok: true, expiresAt: row.expires_at, again: true }
      }
      let divergences: DivergenceEvent[] = []
      this.#storage.transactionSync(() => {
        this.deleteChunks(lookup)
        sql.exec(`UPDATE records SET ${set} WHERE ${open}`, ...values, lookup, token)
        if (relay && !provisional && row.domain === null) this.#relays().complete(lookup, relay.sends)
        if (row.domain !== null && row.sequence !== null && !provisional) {
          // The answer the reply was made from is the reference when too few replicas answered for a majority.
          this.#ordered().committed(row.domain, row.sequence, order?.acks[0] ?? { origin: '', status: reply.status, digest: digestHex(reply.body) })
          divergences = this.#ordered().acknowledge(row.domain, row.sequence, row.request_id, order?.acks ?? [], order?.failed ?? [], now)
        }
        for (let i = 0; i < chunks; i++) {
          sql.exec('INSERT INTO reply_chunks (lookup, idx, data) VALUES (?, ?, ?)', lookup, i, reply.body.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES))
        }
      })
      if (divergences.length > 0) return { ok: true, expiresAt, divergences }
    }
    return { ok: true, expiresAt }
  }

  deleteChunks(lookup: string): void {
    this.#sql.exec('DELETE FROM reply_chunks WHERE lookup = ?', lookup)
  }

  /**
   * Gives the key back to the client's retry (before its commit point), if
   * `token` holds its lease; the relay, if any, is released with it. An
   * ordered request is never released: it is in the log and will be applied;
   * its lease ends now instead, so the alarm (or the client's retry) takes
   * over at once. Call inside a transaction.
   *
   * @returns records released; -1 when an ordered request's lease was ended instead
   */
  release(lookup: string, token: string, sends: number | undefined, now: number): number {
    // An ordered request is in the log and will be applied: it is never released. Its lease ends now, so the
    // alarm (or the client's retry) takes over at once.
    const ordered = this.#sql.exec(
      `UPDATE records SET lease_until = ? WHERE lookup = ? AND token = ? AND state = 'in_flight' AND sequence IS NOT NULL`,
      now,
      lookup,
      token,
    ).rowsWritten
    if (ordered > 0) return -1
    const n = this.#sql.exec(
      `UPDATE records SET state = 'released', token = NULL, lease_until = NULL
       WHERE lookup = ? AND token = ? AND state = 'in_flight'`,
      lookup,
      token,
    ).rowsWritten
    if (n > 0 && sends !== undefined) this.#relays().release(lookup, sends)
    return n
  }

  /** The alarm takes over a record whose Worker died, guarded on that Worker's token (a client retry that took it first wins). */
  takeOver(lookup: string, deadToken: string | null, token: string, leaseUntil: number, now: number): boolean {
    return (
      this.#sql.exec(
        `UPDATE records SET token = ?, attempt = attempt + 1, lease_until = ?
         WHERE lookup = ? AND state = 'in_flight' AND token IS ? AND lease_until <= ?`,
        token,
        leaseUntil,
        lookup,
        deadToken,
        now,
      ).rowsWritten > 0
    )
  }

  /** Ends the lease `token` holds now, so a client retry may take the key at once. */
  endLease(lookup: string, token: string, now: number): void {
    this.#sql.exec(`UPDATE records SET lease_until = ? WHERE lookup = ? AND token = ?`, now, lookup, token)
  }


  /** The record's state for operators and tests (`StableArea.inspect`), or null when there is none or it expired. */
  inspect(lookup: string, now: number, waiters: number): RecordInfo | null {
    const row = this.row(lookup)
    if (!row || !isLive(row, now)) return null
    return {
      state: row.state,
      provisional: row.provisional === 1,
      requestId: row.request_id,
      attempt: row.attempt,
      leaseUntil: row.lease_until,
      expiresAt: row.expires_at,
      status: row.status,
      waiters,
    }
  }

}

/**
 * A record counts until it expires; a running one (in flight, or provisionally committed: `commit()` without a reply,
 * the handler still going) never expires under its lease, even with a TTL shorter than the handler.
 */
export function isLive(row: RecordRow, now: number): boolean {
  // An admitted ordered request lives until its commit, whatever its TTL: a retry waits for it or replays it.
  if (row.state === 'in_flight' && row.sequence !== null) return true
  const running = row.state === 'in_flight' || row.provisional === 1
  return row.expires_at > now || (running && (row.lease_until ?? 0) > now)
}

/**
 * A reply body stored in chunks (over {@link CHUNK_BYTES}), joined back in order.
 *
 * @param sql - the object's SQL storage
 * @param table - the chunk table (`reply_chunks`, or a OnceObject's `once_reply_chunks`)
 * @param lookup - the record's lookup key
 * @returns the whole body
 * @example
 * const body = readChunks(ctx.storage.sql, 'reply_chunks', lookup)
 */
export function readChunks(sql: SqlStorage, table: 'reply_chunks' | 'once_reply_chunks', lookup: string): Uint8Array {
  const parts = sql.exec<{ data: ArrayBuffer }>(`SELECT data FROM ${table} WHERE lookup = ? ORDER BY idx`, lookup).toArray()
  const body = new Uint8Array(parts.reduce((n, p) => n + p.data.byteLength, 0))
  let at = 0
  for (const { data } of parts) {
    body.set(new Uint8Array(data), at)
    at += data.byteLength
  }
  return body
}
