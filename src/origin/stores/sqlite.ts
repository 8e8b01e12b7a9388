import { decide } from '../decide.js'
import { refusedForGood, WritesRefused } from '../refused.js'
import { Mutex } from '../locks.js'
import { onConnection } from '../nesting.js'
import { transactionControl } from './transaction-control.js'
import type { ApplyClaim, ApplyOutcome, ApplyWork, AppliedEntry, ReceiverStore } from '../types.js'
import { insertParams, SCHEMA, SQL, toApplied, toNextMap, toRecord } from './sql.js'

/** SQLite's "another connection holds the write lock" (node:sqlite and better-sqlite3 say it alike). */
const BUSY = /SQLITE_BUSY|database is locked/i

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
  /**
   * node:sqlite (Node >= 22.16 or >= 24): whether a transaction is open (SQLite may roll one back by itself, on a
   * full disk or an I/O error). The store needs this or `inTransaction`: `sqliteStore()` throws without either.
   */
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
 * (`c.var.receiver.tx`) is the connection, guarded: its statements run only
 * while the request's transaction is open (after it, or after SQLite ended
 * it by itself, they throw instead of committing on their own).
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
 * `DatabaseSync` on Node >= 22.16 or >= 24, better-sqlite3). It creates its
 * tables (`once_requests`, `once_domains`) if they are missing. It needs the
 * connection to say whether its transaction is open (node:sqlite's
 * `isTransaction`, better-sqlite3's `inTransaction`) and throws a TypeError
 * without: node:sqlite before 22.16 does not.
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
 * hold across connections): a request waits for another process's running
 * one asynchronously, up to `waitMs` (then 503), without SQLite's
 * `busy_timeout`, which would sleep on the thread and freeze every route of
 * the waiting process meanwhile. (Use WAL mode, so readers never wait.)
 *
 * If SQLite rolls the transaction back by itself while the handler runs
 * (a full disk, an I/O error), the request fails (503 `store-unavailable`)
 * rather than being recorded outside a transaction, and every statement the
 * handler runs through `c.var.receiver.tx` from then on throws (it would
 * commit on its own); so does one it runs after its request was answered
 * (a handler Hono's `timeout()` gave up on, a promise it did not await).
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
 *   // A malformed body is a final 400 (recorded), not a throw (500 handler-failed, which counts towards poison).
 *   const amount = ((await c.req.json().catch(() => null)) as { amount?: unknown } | null)?.amount
 *   if (typeof amount !== 'number' || !Number.isSafeInteger(amount)) return c.json({ error: 'amount: expected an integer' }, 400)
 *   c.var.receiver.tx.prepare('INSERT INTO accounts VALUES (?, ?) ON CONFLICT DO UPDATE SET balance = balance + excluded.balance').run(c.req.param('id'), amount)
 *   return c.json({ ok: true }, 201)
 * })
 */
export function sqliteStore<DB extends SqliteDatabaseLike>(db: DB, options: SqliteStoreOptions = {}): SqliteStore<DB> {
  const waitMs = options.waitMs ?? 5000
  if (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > 10 * 60_000) {
    throw new TypeError(`hono-once: invalid sqliteStore() options: waitMs: expected an integer >= 0 and <= 600000, got ${String(options.waitMs)}`)
  }
  // Without it, a transaction SQLite rolled back by itself mid-handler goes unseen, and the rest of the request
  // (its later writes, its record) commits on its own: a half-applied request recorded as applied.
  const said = typeof db.isTransaction === 'boolean' ? 'isTransaction' : typeof db.inTransaction === 'boolean' ? 'inTransaction' : undefined
  if (said === undefined) {
    throw new TypeError(
      "hono-once: sqliteStore() needs a connection that says whether its transaction is open: node:sqlite's DatabaseSync.isTransaction (Node >= 22.16 or >= 24), or a better-sqlite3 Database (inTransaction); this one has neither",
    )
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

  /**
   * `BEGIN IMMEDIATE`, waiting for another process's write transaction on the file asynchronously (up to
   * `waitMs`): SQLite's own busy handler (`PRAGMA busy_timeout`) sleeps on the thread, which would freeze every
   * route of this process while it waits. The connection's own setting is back in place for the app's statements.
   */
  const begin = async (): Promise<void> => {
    const until = Date.now() + waitMs
    // The app's setting as it is now (it may have changed since the store was made), put back after each try.
    // Prepared each time: SQLite compiles this pragma's value into the statement, so a statement kept would answer the old one.
    const busyTimeout = Number((db.prepare('PRAGMA busy_timeout').get() as { timeout?: number } | undefined)?.timeout ?? 0)
    for (let pause = 5; ; pause = Math.min(100, pause * 2)) {
      if (busyTimeout > 0) db.exec('PRAGMA busy_timeout = 0')
      try {
        db.exec('BEGIN IMMEDIATE')
        return
      } catch (err) {
        if (!BUSY.test(String((err as { code?: unknown } | null)?.code ?? '') + String(err)) || Date.now() + pause > until) throw err
      } finally {
        if (busyTimeout > 0) db.exec(`PRAGMA busy_timeout = ${busyTimeout}`)
      }
      await new Promise((resolve) => setTimeout(resolve, pause))
    }
  }

  /** Whether the connection is inside a transaction. */
  const inTransaction = (): boolean => db[said] === true
  const turn = <T>(what: string, fn: () => T | Promise<T>): Promise<T> =>
    mutex.run(fn, waitMs, () => new Error(`hono-once: sqliteStore ${what} waited ${waitMs} ms for the connection (is store.exclusive() called from inside a receiver handler? use c.var.receiver.tx there)`))

  return onConnection(db, {
    apply(claim: ApplyClaim, work: ApplyWork<DB>): Promise<ApplyOutcome> {
      return turn('apply', async () => {
        await begin()
        try {
          const decision = decide(claim, state(claim))
          if (decision.kind !== 'run') {
            rollback()
            return decision
          }
          // The handler writes through a handle that refuses every statement once this transaction is over (the
          // handler outlived the receiver: Hono's timeout(), a promise it did not await) or SQLite ended it by itself:
          // such a write would commit on its own, while the answer says nothing was applied.
          let open = true
          const tx = guarded(db, () => open && inTransaction())
          let reply: Awaited<ReturnType<ApplyWork<DB>>>
          try {
            reply = await work(tx)
          } finally {
            open = false
          }
          // SQLite ended the transaction itself mid-handler (whatever the handler made of its refused statements): the
          // store failed, not the app; what follows would run in autocommit and consume the slot without its writes.
          if (!inTransaction()) throw new Error('hono-once: SQLite rolled the receiver transaction back during the handler (disk full or I/O error?); nothing was recorded')
          if (!reply) {
            rollback()
            return { kind: 'rolled-back' }
          }
          if (claim.domain === undefined || claim.sequence === undefined) {
            stmt.insertUnordered.run(...insertParams(claim.requestId, undefined, false, reply, Date.now()))
          } else {
            stmt.ensureDomain.run(claim.domain)
            stmt.insertOrdered.run(...insertParams(claim.requestId, { domain: claim.domain, sequence: claim.sequence }, claim.noop, reply, Date.now()))
            stmt.advance.run(claim.domain)
          }
          try {
            db.exec('COMMIT')
          } catch (err) {
            // A deferred foreign key the handler broke fails the COMMIT, the same way on every attempt.
            throw refusedForGood(err) ? new WritesRefused(err) : err
          }
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
  })
}

/**
 * The connection as a handler sees it: `exec()`, and every statement it prepares (`run`, `get`, `all`, `iterate`),
 * throw unless `usable()` says its transaction is still open.
 */
function guarded<DB extends SqliteDatabaseLike>(db: DB, usable: () => boolean): DB {
  const check = (sql?: unknown) => {
    // Anywhere in the text (a statement list, after a comment): one would end the receiver's transaction midway.
    const control = typeof sql === 'string' ? transactionControl(sql) : undefined
    if (control !== undefined) {
      throw new Error(
        `hono-once: a handler may not run BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT or RELEASE (found ${control}): the receiver's transaction holds its writes and its record together`,
      )
    }
    if (!usable()) {
      throw new Error(
        "hono-once: this request's transaction is over (it was answered, or SQLite rolled it back by itself): a statement now would commit on its own, outside it",
      )
    }
  }
  const statement = (target: object): object =>
    new Proxy(target, {
      get(t, prop) {
        const value: unknown = Reflect.get(t, prop, t)
        if (typeof value !== 'function' || prop === 'constructor') return value
        if (prop === 'run' || prop === 'get' || prop === 'all' || prop === 'iterate') {
          return (...args: unknown[]) => {
            check()
            return (value as (...a: unknown[]) => unknown).apply(t, args)
          }
        }
        // better-sqlite3's chaining (`bind()`, `pluck()`, `raw()`, …) returns the statement itself: guarded again.
        return (...args: unknown[]) => {
          const out = (value as (...a: unknown[]) => unknown).apply(t, args)
          return out === t ? statement(t) : out
        }
      },
    })
  return new Proxy(db, {
    get(t, prop) {
      const value: unknown = Reflect.get(t, prop, t)
      if (typeof value !== 'function' || prop === 'constructor') return value
      if (prop === 'exec') {
        return (...args: unknown[]) => {
          check(args[0])
          return (value as (...a: unknown[]) => unknown).apply(t, args)
        }
      }
      if (prop === 'prepare') {
        return (...args: unknown[]) => {
          check(args[0])
          return statement((value as (...a: unknown[]) => object).apply(t, args))
        }
      }
      return (value as (...a: unknown[]) => unknown).bind(t)
    },
  })
}
