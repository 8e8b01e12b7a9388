import type { AppliedEntry, StoredRecord, StoredReply } from '../types.js'

/**
 * The receiver's tables, the same on SQLite and D1: `once_requests` (one row
 * per applied request id; ordered ones with their slot, unique per domain
 * and sequence) and `once_domains` (each domain's next expected sequence).
 * The CHECK makes an ordered insert fail when its sequence is not the
 * domain's next one (see {@link SQL}.insertOrdered), so a stale writer's
 * whole transaction or batch fails instead of leaving a gap.
 *
 * @example
 * for (const statement of SCHEMA) db.exec(statement)
 */
export const SCHEMA: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS once_requests (
    request_id TEXT PRIMARY KEY,
    domain TEXT,
    sequence INTEGER,
    noop INTEGER NOT NULL DEFAULT 0,
    status INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body BLOB,
    applied_at INTEGER NOT NULL,
    CHECK ((domain IS NULL) = (sequence IS NULL))
  )`,
  'CREATE UNIQUE INDEX IF NOT EXISTS once_requests_slot ON once_requests (domain, sequence) WHERE domain IS NOT NULL',
  'CREATE INDEX IF NOT EXISTS once_requests_applied_at ON once_requests (applied_at)',
  'CREATE TABLE IF NOT EXISTS once_domains (domain TEXT PRIMARY KEY, next_sequence INTEGER NOT NULL)',
]

/**
 * The statements both SQL stores run, with `?` parameters in the order given.
 *
 * @example
 * db.prepare(SQL.selectRecord).get(requestId)
 */
export const SQL = {
  /** (request_id) */
  selectRecord: 'SELECT request_id, domain, sequence, noop, status, headers, body FROM once_requests WHERE request_id = ?',
  /** (domain) */
  selectNext: 'SELECT next_sequence FROM once_domains WHERE domain = ?',
  /** (domain, sequence) */
  selectSlot: 'SELECT request_id FROM once_requests WHERE domain = ? AND sequence = ?',
  /** (request_id, status, headers, body, applied_at) */
  insertUnordered:
    'INSERT INTO once_requests (request_id, domain, sequence, noop, status, headers, body, applied_at) VALUES (?, NULL, NULL, 0, ?, ?, ?, ?)',
  /** (domain) */
  ensureDomain: 'INSERT OR IGNORE INTO once_domains (domain, next_sequence) VALUES (?, 1)',
  /**
   * (request_id, domain, domain, sequence, noop, status, headers, body, applied_at).
   * The sequence is read back from `once_domains` only if it is still the next
   * one; otherwise it is NULL and the CHECK fails the statement.
   */
  insertOrdered:
    'INSERT INTO once_requests (request_id, domain, sequence, noop, status, headers, body, applied_at) ' +
    'VALUES (?, ?, (SELECT next_sequence FROM once_domains WHERE domain = ? AND next_sequence = ?), ?, ?, ?, ?, ?)',
  /** (domain) */
  advance: 'UPDATE once_domains SET next_sequence = next_sequence + 1 WHERE domain = ?',
  /** () */
  selectAllNext: 'SELECT domain, next_sequence FROM once_domains ORDER BY domain',
  /** () */
  selectApplied: 'SELECT domain, sequence, request_id, noop FROM once_requests WHERE domain IS NOT NULL ORDER BY domain, sequence',
  /** (domain) */
  selectAppliedIn: 'SELECT domain, sequence, request_id, noop FROM once_requests WHERE domain = ? ORDER BY sequence',
  /** (applied_at) */
  prune: 'DELETE FROM once_requests WHERE applied_at < ?',
} as const

/**
 * The bound parameters of an insert, in the order of {@link SQL}.insertUnordered
 * (`ordered: false`) or {@link SQL}.insertOrdered.
 *
 * @param requestId - the claim's request id
 * @param slot - domain and sequence of an ordered claim
 * @param noop - recorded by `Once-Noop`
 * @param reply - the answer to store
 * @param now - ms since the epoch
 * @returns the parameters
 * @example
 * db.prepare(SQL.insertUnordered).run(...insertParams('r-1', undefined, false, reply, Date.now()))
 */
export function insertParams(
  requestId: string,
  slot: { domain: string; sequence: number } | undefined,
  noop: boolean,
  reply: StoredReply,
  now: number,
): (string | number | Uint8Array | null)[] {
  const stored = [reply.status, JSON.stringify(reply.headers), reply.body.byteLength === 0 ? null : reply.body, now]
  if (!slot) return [requestId, ...stored]
  return [requestId, slot.domain, slot.domain, slot.sequence, noop ? 1 : 0, ...stored]
}

/**
 * A row of {@link SQL}.selectRecord as a {@link StoredRecord}, whatever the driver
 * returns for a BLOB (Uint8Array, Buffer, ArrayBuffer or an array of bytes).
 *
 * @param row - the row
 * @returns the record
 * @example
 * const rec = toRecord(db.prepare(SQL.selectRecord).get(id) as Record<string, unknown>)
 */
export function toRecord(row: Record<string, unknown>): StoredRecord {
  return {
    requestId: String(row.request_id),
    domain: row.domain === null || row.domain === undefined ? null : String(row.domain),
    sequence: row.sequence === null || row.sequence === undefined ? null : Number(row.sequence),
    noop: Number(row.noop) === 1,
    reply: { status: Number(row.status), headers: toHeaders(row.headers), body: toBytes(row.body) },
  }
}

/**
 * A row of {@link SQL}.selectApplied as an {@link AppliedEntry}.
 *
 * @param row - the row
 * @returns the entry
 * @example
 * const rows = (db.prepare(SQL.selectApplied).all() as Record<string, unknown>[]).map(toApplied)
 */
export function toApplied(row: Record<string, unknown>): AppliedEntry {
  return { domain: String(row.domain), sequence: Number(row.sequence), requestId: String(row.request_id), noop: Number(row.noop) === 1 }
}

/**
 * Rows of {@link SQL}.selectAllNext as a record of domain → next sequence.
 *
 * @param rows - the rows
 * @returns the map
 * @example
 * toNextMap([{ domain: 'a1', next_sequence: 3 }]) // { a1: 3 }
 */
export function toNextMap(rows: Record<string, unknown>[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const row of rows) out[String(row.domain)] = Number(row.next_sequence)
  return out
}

function toBytes(value: unknown): Uint8Array {
  if (value === null || value === undefined) return new Uint8Array()
  if (value instanceof Uint8Array) return new Uint8Array(value)
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0))
  if (Array.isArray(value)) return Uint8Array.from(value as number[])
  if (typeof value === 'string') return new TextEncoder().encode(value)
  throw new TypeError('hono-once: unexpected BLOB value from the database')
}

function toHeaders(value: unknown): [string, string][] {
  const parsed: unknown = JSON.parse(String(value))
  if (!Array.isArray(parsed)) throw new TypeError('hono-once: stored headers are not a list')
  return parsed.filter((h): h is [string, string] => Array.isArray(h) && typeof h[0] === 'string' && typeof h[1] === 'string')
}
