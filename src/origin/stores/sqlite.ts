import { decide } from '../decide.js'
import { Mutex } from '../locks.js'
import type { ApplyClaim, ApplyOutcome, ApplyWork, AppliedEntry, ReceiverStore } from '../types.js'
import { insertParams, SCHEMA, SQL, toApplied, toNextMap, toRecord } from './sql.js'

/** One mutex per connection, so two stores made on one connection still take turns. */
const mutexes = new WeakMap<object, Mutex>()

/**
 * A value SQLite binds: what node:sqlite and better-sqlite3 both accept.
 *
 * @example
 * const v: SqliteValue = new Uint8Array([1, 2])
 */
export type SqliteValue = string | number | bigint | null | Uint8Array

/**
 * A prepared statement, as node:sqlite's `StatementSync` and better-sqlite3's `Statement` offer it.
 *
 * @example
 * const stmt: SqliteStatementLike = db.prepare('SELECT 1 AS one')
 */
export interface SqliteStatementLike {
  run(...params: SqliteValue[]): unknown
  get(...params: SqliteValue[]): unknown
  all(...params: SqliteValue[]): unknown[]
}

/**
 * A synchronous SQLite connection, duck-typed to what node:sqlite's
 * `DatabaseSync` and better-sqlite3's `Database` both offer, so hono-once
 * never imports a driver.
 *
 * @example
 * import { DatabaseSync } from 'node:sqlite'
 * const db: SqliteDatabaseLike = new DatabaseSync('origin.db')
 */
export interface SqliteDatabaseLike {
  exec(sql: string): unknown
  prepare(sql: string): SqliteStatementLike
  /** node:sqlite: whether a transaction is open (SQLite may roll one back by itself, on a full disk or an I/O error). */
  readonly isTransaction?: boolean
  /** better-sqlite3's name for the same. */
  readonly inTransaction?: boolean
}

/**
 * Options of {@link sqliteStore}.
 *
 * @example
 * sqliteStore(db, { waitMs: 2000 })
 */
export interface SqliteStoreOptions {
  /**
   * Longest wait for the connection, by a receiver transaction or by
   * {@link SqliteStore.exclusive}; past it the call fails (a receiver answers
   * 503 `store-unavailable`; `exclusive()` throws). A handler that calls
   * `exclusive()` would otherwise wait for its own transaction for ever.
   * Default 5000.
   */
  waitMs?: number
}

/**
 * A {@link ReceiverStore} on one SQLite connection, whose transaction handle
 * (`c.var.receiver.tx`) is the connection itself.
 *
 * @example
 * const store: SqliteStore<DatabaseSync> = sqliteStore(new DatabaseSync(':memory:'))
 */
export interface SqliteStore<DB extends SqliteDatabaseLike> extends ReceiverStore<DB> {
  /**
   * Runs `fn` with the connection while no receiver transaction is open on
   * it: use it for the app's own reads and writes outside `onceReceiver()`
   * (GET routes, requests without `Once-Request-Id`), which would otherwise
   * run inside, and see the uncommitted writes of, another request's
   * transaction.
   *
   * Never call it from a receiver handler (use `c.var.receiver.tx`): it
   * would wait for that handler's own transaction, so it gives up after
   * `waitMs` and throws.
   *
   * @example
   * app.get('/accounts/:id', async (c) => c.json(await store.exclusive((db) => db.prepare('SELECT * FROM accounts WHERE id = ?').get(c.req.param('id')))))
   */
  exclusive<T>(fn: (db: DB) => T | Promise<T>): Promise<T>
}

/**
 * A receiver store on a synchronous SQLite connection (node:sqlite
 * `DatabaseSync`, better-sqlite3). It creates its tables (`once_requests`,
 * `once_domains`) if they are missing.
 *
 * Transaction model: each deduped request runs as `BEGIN IMMEDIATE`, the
 * checks, your handler (writing through `c.var.receiver.tx`, the same
 * connection), the dedupe insert and the sequence advance, `COMMIT`; a
 * non-final answer (5xx, 408, 429) or a thrown error is `ROLLBACK`. Your
 * handler is async but the connection is one: every transaction on this
 * store is serialized by an async mutex, so another request's statements
 * never run inside an open transaction. Requests therefore apply one at a
 * time per store: keep handlers short and do no slow network I/O inside
 * them. Use {@link SqliteStore.exclusive} for the app's other access to the
 * connection. Never run `BEGIN`/`COMMIT` in a handler. Several processes on
 * one database file are safe too (`BEGIN IMMEDIATE` and the constraints
 * hold across connections); set `PRAGMA busy_timeout` so they wait for each
 * other rather than fail with SQLITE_BUSY.
 *
 * If SQLite rolls the transaction back by itself while the handler runs
 * (a full disk, an I/O error), the request fails (503 `store-unavailable`)
 * rather than being recorded outside a transaction.
 *
 * @param db - the connection; the store takes over its transactions
 * @param options - see {@link SqliteStoreOptions}
 * @returns the store
 * @example
 * import { DatabaseSync } from 'node:sqlite'
 * import { onceReceiver, sqliteStore } from 'hono-once/origin'
 *
 * const db = new DatabaseSync('origin.db')
 * db.exec('CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL)')
 * app.post('/accounts/:id/deposits', onceReceiver({ store: sqliteStore(db) }), async (c) => {
 *   const { amount } = await c.req.json<{ amount: number }>()
 *   c.var.receiver.tx.prepare('INSERT INTO accounts VALUES (?, ?) ON CONFLICT DO UPDATE SET balance = balance + excluded.balance').run(c.req.param('id'), amount)
 *   return c.json({ ok: true }, 201)
 * })
 */
export function sqliteStore<DB extends SqliteDatabaseLike>(db: DB, options: SqliteStoreOptions = {}): SqliteStore<DB> {
  const waitMs = options.waitMs ?? 5000
  if (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > 10 * 60_000) {
    throw new TypeError(`hono-once: invalid sqliteStore() options: waitMs: expected an integer >= 0 and <= 600000, got ${String(options.waitMs)}`)
  }
  for (const statement of SCHEMA) db.exec(statement)
  const mutex = mutexes.get(db) ?? new Mutex()
  mutexes.set(db, mutex)
  const stmt = Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)])) as Record<keyof typeof SQL, SqliteStatementLike>

  const state = (claim: ApplyClaim) => {
    const row = stmt.selectRecord.get(claim.requestId) as Record<string, unknown> | undefined
    if (claim.domain === undefined || claim.sequence === undefined) return { record: row && toRecord(row), next: 1, slotOwner: undefined }
    const next = stmt.selectNext.get(claim.domain) as { next_sequence: number } | undefined
    const slot = stmt.selectSlot.get(claim.domain, claim.sequence) as { request_id: string } | undefined
    return { record: row && toRecord(row), next: next === undefined ? 1 : Number(next.next_sequence), slotOwner: slot?.request_id }
  }

  const rollback = () => {
    try {
      db.exec('ROLLBACK')
    } catch {
      // SQLite already rolled back (some errors end the transaction themselves).
    }
  }

  /** Whether the connection is inside a transaction; undefined for a driver that does not say. */
  const inTransaction = (): boolean | undefined => db.isTransaction ?? db.inTransaction
  const turn = <T>(what: string, fn: () => T | Promise<T>): Promise<T> =>
    mutex.run(fn, waitMs, () => new Error(`hono-once: sqliteStore ${what} waited ${waitMs} ms for the connection (is store.exclusive() called from inside a receiver handler? use c.var.receiver.tx there)`))

  return {
    apply(claim: ApplyClaim, work: ApplyWork<DB>): Promise<ApplyOutcome> {
      return turn('apply', async () => {
        db.exec('BEGIN IMMEDIATE')
        try {
          const decision = decide(claim, state(claim))
          if (decision.kind !== 'run') {
            rollback()
            return decision
          }
          const reply = await work(db)
          if (!reply) {
            rollback()
            return { kind: 'rolled-back' }
          }
          // SQLite ended the transaction itself mid-handler: what follows would run in autocommit and consume the slot without the app's writes.
          if (inTransaction() === false) throw new Error('hono-once: SQLite rolled the receiver transaction back during the handler (disk full or I/O error?); nothing was recorded')
          if (claim.domain === undefined || claim.sequence === undefined) {
            stmt.insertUnordered.run(...insertParams(claim.requestId, undefined, false, reply, Date.now()))
          } else {
            stmt.ensureDomain.run(claim.domain)
            stmt.insertOrdered.run(...insertParams(claim.requestId, { domain: claim.domain, sequence: claim.sequence }, claim.noop, reply, Date.now()))
            stmt.advance.run(claim.domain)
          }
          db.exec('COMMIT')
          return { kind: 'applied' }
        } catch (err) {
          rollback()
          throw err
        }
      })
    },
    nextSequence: (domain) => turn('nextSequence', () => Number((stmt.selectNext.get(domain) as { next_sequence: number } | undefined)?.next_sequence ?? 1)),
    nextSequences: () => turn('nextSequences', () => toNextMap(stmt.selectAllNext.all() as Record<string, unknown>[])),
    applied: (domain?: string): Promise<AppliedEntry[]> =>
      turn('applied', () => (domain === undefined ? stmt.selectApplied.all() : stmt.selectAppliedIn.all(domain)).map((r) => toApplied(r as Record<string, unknown>))),
    prune: (appliedBefore) => turn('prune', () => Number((stmt.prune.run(appliedBefore) as { changes?: number | bigint }).changes ?? 0)),
    exclusive: (fn) => turn('exclusive()', () => fn(db)),
  }
}
