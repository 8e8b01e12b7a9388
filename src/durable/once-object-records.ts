import { CHUNK_BYTES, readChunks } from './records.js'
import { RECORD_KEY_COLUMNS, replyChunksTable } from './schema.js'
import type { StoredReply } from './types.js'

/**
 * The records table of an `OnceObject`, in the object's own SQLite, next to
 * the tables its app writes: the same ideas as the StableArea's `records`
 * (scope + key, fingerprint, request id, state, stored reply, expiry), and
 * replies over one row split into `once_reply_chunks`. The names start with
 * `once_` so they stay out of the subclass's way.
 */
const SCHEMA = `CREATE TABLE IF NOT EXISTS once_records (
    ${RECORD_KEY_COLUMNS},
    expires_at  INTEGER NOT NULL,
    status      INTEGER,
    headers     TEXT,
    body        BLOB,
    chunks      INTEGER NOT NULL DEFAULT 0,
    manual_encoding INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS once_records_by_expiry ON once_records (expires_at);
  ${replyChunksTable('once_reply_chunks')}`

/** One record as stored. */
export interface OnceRow extends Record<string, SqlStorageValue> {
  fingerprint: string
  request_id: string
  state: 'in_flight' | 'committed' | 'released'
  token: string | null
  attempt: number
  expires_at: number
  status: number | null
  headers: string | null
  body: ArrayBuffer | null
  chunks: number
  /** 1: the body is already in its Content-Encoding (replayed as it is). */
  manual_encoding: number
}

/**
 * Most lookups an object keeps in memory to know, without a read, that a key
 * has no record (see {@link OnceRecords.get}); an object with more records
 * reads each key's, as before.
 */
export const KNOWN_LOOKUPS_MAX = 10_000

/** Expired records one sweep deletes at least, when that many expired (more when more were written: see `sweep`). */
const SWEEP_ROWS = 16
/** A sweep runs at most this often (ms). */
const SWEEP_EVERY_MS = 1000
/** Lookups one DELETE statement names (a Durable Object's SQL binds at most 100 values per statement). */
const SWEEP_BATCH = 64

/**
 * Reads and writes the records table. Every method is synchronous SQL, so
 * a caller inside `storage.transaction()` gets it in the same transaction as
 * the app's own writes.
 *
 * @example
 * const records = new OnceRecords(ctx.storage.sql)
 * records.commit(lookup, fingerprint, requestId, 1, reply, Date.now() + ttlMs)
 */
export class OnceRecords {
  #sweptAt = 0
  /**
   * Every lookup that may have a row (and perhaps a few that no longer do):
   * a lookup missing from it has none, so a new key is told without a read.
   * Loaded with the first {@link get}; undefined once the table holds more
   * than {@link KNOWN_LOOKUPS_MAX} (then every key is read). It is only ever
   * wrong in the safe direction: a lookup is added before its row is written
   * (a write rolled back leaves it here: one read too many), and taken out
   * only by the sweep, which runs outside any transaction. Each statement
   * costs a request about 60 µs under `wrangler dev` (docs/benchmarks.md).
   */
  #known: Set<string> | undefined
  #loaded = false
  /** Record rows written since the last sweep (committed, held or released): the next one deletes up to twice as many expired ones. */
  #written = 0

  constructor(private readonly sql: SqlStorage) {
    sql.exec(SCHEMA)
    // Tables made before replies could be already encoded lack the column; it is added with its default (0).
    try {
      sql.exec('SELECT manual_encoding FROM once_records LIMIT 0')
    } catch {
      sql.exec('ALTER TABLE once_records ADD COLUMN manual_encoding INTEGER NOT NULL DEFAULT 0')
    }
  }

  /** The record of `lookup`, live or not; undefined when there is none (told from memory for a key never seen). */
  get(lookup: string): OnceRow | undefined {
    if (!this.#mayHave(lookup)) return undefined
    return this.sql
      .exec<OnceRow>(
        'SELECT fingerprint, request_id, state, token, attempt, expires_at, status, headers, body, chunks, manual_encoding FROM once_records WHERE lookup = ?',
        lookup,
      )
      .toArray()[0]
  }

  /**
   * Stores `reply` as the committed answer of `lookup`, replacing whatever
   * record (`previous`: released, expired or leased) was there.
   */
  commit(lookup: string, previous: OnceRow | undefined, fingerprint: string, requestId: string, attempt: number, reply: StoredReply, expiresAt: number): void {
    this.#remember(lookup)
    this.#written++
    // A reply in chunks clears its lookup's old chunks itself (#chunksOf).
    if (previous && previous.chunks > 0 && reply.body.byteLength <= CHUNK_BYTES) this.#deleteChunks(lookup)
    const chunks = this.#chunksOf(lookup, reply.body)
    this.sql.exec(
      `INSERT INTO once_records (lookup, fingerprint, request_id, state, token, attempt, expires_at, status, headers, body, chunks, manual_encoding)
       VALUES (?, ?, ?, 'committed', NULL, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (lookup) DO UPDATE SET fingerprint = excluded.fingerprint, request_id = excluded.request_id, state = 'committed',
         token = NULL, attempt = excluded.attempt, expires_at = excluded.expires_at, status = excluded.status,
         headers = excluded.headers, body = excluded.body, chunks = excluded.chunks, manual_encoding = excluded.manual_encoding`,
      lookup,
      fingerprint,
      requestId,
      attempt,
      expiresAt,
      reply.status,
      JSON.stringify(reply.headers),
      chunks === 0 ? reply.body : null,
      chunks,
      reply.encoded ? 1 : 0,
    )
  }

  /**
   * Marks `lookup` as running under `token` (a lease route), or, without a
   * token, as released: nothing took effect, the key keeps its fingerprint
   * (422 for another request) and its request id for the retry.
   */
  hold(lookup: string, previous: OnceRow | undefined, fingerprint: string, requestId: string, attempt: number, token: string | null, expiresAt: number): void {
    this.#remember(lookup)
    this.#written++
    if (previous && previous.chunks > 0) this.#deleteChunks(lookup)
    this.sql.exec(
      `INSERT INTO once_records (lookup, fingerprint, request_id, state, token, attempt, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (lookup) DO UPDATE SET fingerprint = excluded.fingerprint, request_id = excluded.request_id, state = excluded.state,
         token = excluded.token, attempt = excluded.attempt, expires_at = excluded.expires_at, status = NULL, headers = NULL,
         body = NULL, chunks = 0, manual_encoding = 0`,
      lookup,
      fingerprint,
      requestId,
      token === null ? 'released' : 'in_flight',
      token,
      attempt,
      expiresAt,
    )
  }

  /** Whether `token` still holds `lookup` (a lease route that ran long may have been released and taken over). */
  holds(lookup: string, token: string): boolean {
    return this.sql.exec('SELECT 1 FROM once_records WHERE lookup = ? AND token = ?', lookup, token).toArray().length > 0
  }

  /** The stored reply of a committed row. */
  reply(lookup: string, row: OnceRow): StoredReply {
    const body = row.chunks > 0 ? readChunks(this.sql, 'once_reply_chunks', lookup) : new Uint8Array(row.body ?? new ArrayBuffer(0))
    const reply: StoredReply = { status: row.status ?? 500, headers: JSON.parse(row.headers ?? '[]') as [string, string][], body }
    if (row.manual_encoding === 1) reply.encoded = true
    return reply
  }

  /**
   * Deletes expired records, at most once a second: up to twice as many as
   * were written since the last sweep (at least {@link SWEEP_ROWS}), so
   * storage stays bounded at any rate of new keys without taking the
   * object's alarm, which stays the subclass's own. A record is also treated
   * as gone the moment it expires, swept or not.
   *
   * @param now - the time, ms
   */
  sweep(now: number): void {
    if (now - this.#sweptAt < SWEEP_EVERY_MS) return
    this.#sweptAt = now
    try {
      this.#sweep(now)
    } catch (err) {
      // Housekeeping never fails the request that happens to run it; the next sweep tries again.
      console.error('hono-once: sweeping expired OnceObject records failed', err)
    }
  }

  #sweep(now: number): void {
    // Twice what was written since the last sweep (at least SWEEP_ROWS): expiry keeps pace with any rate of new keys.
    const limit = Math.max(SWEEP_ROWS, 2 * this.#written)
    this.#written = 0
    const expired = this.sql
      .exec<{ lookup: string; chunks: number }>('SELECT lookup, chunks FROM once_records WHERE expires_at <= ? LIMIT ?', now, limit)
      .toArray()
    for (const { lookup, chunks } of expired) if (chunks > 0) this.#deleteChunks(lookup)
    // One statement per batch, not per row: each costs a request about the same, whatever it deletes.
    for (let i = 0; i < expired.length; i += SWEEP_BATCH) {
      const batch = expired.slice(i, i + SWEEP_BATCH).map((row) => row.lookup)
      this.sql.exec(`DELETE FROM once_records WHERE expires_at <= ? AND lookup IN (${batch.map(() => '?').join(', ')})`, now, ...batch)
      for (const lookup of batch) this.#known?.delete(lookup)
    }
  }

  /** Whether `lookup` may have a row: true unless the known lookups are kept and lack it. */
  #mayHave(lookup: string): boolean {
    this.#load()
    return this.#known === undefined || this.#known.has(lookup)
  }

  /** Adds `lookup` to the known lookups before its row is written (they are given up past the limit). */
  #remember(lookup: string): void {
    this.#load()
    if (!this.#known) return
    this.#known.add(lookup)
    if (this.#known.size > KNOWN_LOOKUPS_MAX) this.#known = undefined
  }

  /** Reads the lookups the table holds, once per instance, unless there are more than {@link KNOWN_LOOKUPS_MAX}. */
  #load(): void {
    if (this.#loaded) return
    this.#loaded = true
    const rows = this.sql.exec<{ lookup: string }>(`SELECT lookup FROM once_records LIMIT ${KNOWN_LOOKUPS_MAX + 1}`).toArray()
    if (rows.length <= KNOWN_LOOKUPS_MAX) this.#known = new Set(rows.map((r) => r.lookup))
  }

  /** Writes the chunks of a body too large for one row; returns how many (0: the body fits inline). */
  #chunksOf(lookup: string, body: Uint8Array): number {
    if (body.byteLength <= CHUNK_BYTES) return 0
    // Any chunks left by an earlier row go first, whether or not the caller saw that row (a large reply is rare).
    this.#deleteChunks(lookup)
    const chunks = Math.ceil(body.byteLength / CHUNK_BYTES)
    for (let i = 0; i < chunks; i++) {
      this.sql.exec('INSERT INTO once_reply_chunks (lookup, idx, data) VALUES (?, ?, ?)', lookup, i, body.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES))
    }
    return chunks
  }

  #deleteChunks(lookup: string): void {
    this.sql.exec('DELETE FROM once_reply_chunks WHERE lookup = ?', lookup)
  }
}
