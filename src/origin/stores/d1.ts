import { refusedForGood, WriteConflict, WritesRefused } from '../refused.js'
import { onConnection } from '../nesting.js'
import { decide, type ClaimState } from '../decide.js'
import type { ApplyClaim, ApplyOutcome, ApplyWork, AppliedEntry, ReceiverStore } from '../types.js'
import { insertParams, SCHEMA, SQL, toApplied, toNextMap, toRecord } from './sql.js'

/**
 * A D1 prepared statement, as far as the store uses it (Cloudflare's `D1PreparedStatement` fits).
 *
 * @example
 * const stmt: D1StatementLike = env.DB.prepare('SELECT 1')
 */
export interface D1StatementLike {
  bind(...values: unknown[]): D1StatementLike
  first<T = Record<string, unknown>>(): Promise<T | null>
  all<T = Record<string, unknown>>(): Promise<{ results: T[] }>
  run(): Promise<{ meta: { changes: number } }>
}

/**
 * A D1 database, as far as the store uses it (Cloudflare's `D1Database` fits).
 *
 * @example
 * const db: D1DatabaseLike = env.DB
 */
export interface D1DatabaseLike {
  prepare(query: string): D1StatementLike
  batch(statements: D1StatementLike[]): Promise<{ results: unknown[] }[]>
}

/**
 * The D1 store's transaction handle. D1 has no interactive transactions:
 * read through `db` directly, and `push` your writes; the receiver runs them
 * in one `db.batch()` with its dedupe insert and sequence advance, so they
 * commit together or not at all.
 *
 * @example
 * const { tx } = c.var.receiver
 * const row = await tx.db.prepare('SELECT balance FROM accounts WHERE id = ?').bind(id).first<{ balance: number }>()
 * tx.push(tx.db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?').bind(amount, id))
 */
export interface D1Tx<DB extends D1DatabaseLike = D1DatabaseLike> {
  /** The database, for reads. Writes made here directly are not part of the batch. */
  readonly db: DB
  /**
   * Adds write statements to the request's batch, in order. Their results are
   * not checked: one that changes no row (an `UPDATE … WHERE balance >= ?`
   * whose row another request changed since the handler read it) still
   * commits with the answer. Use {@link D1Tx.pushGuarded} for a write the
   * answer depends on.
   */
  push(...statements: ReturnType<DB['prepare']>[]): void
  /**
   * Adds one write (`INSERT`, `UPDATE` or `DELETE`) that must change at least
   * one row: if it changes none when the batch runs (what the handler read
   * was changed by another request meanwhile), the whole batch rolls back and
   * the request answers 503 `store-unavailable` (retryable): the edge sends it
   * again, and the handler reads anew (and answers, say, 422). The handler
   * must itself answer when its read already shows the write would match
   * nothing: a guard that fails on every attempt is retried for ever.
   *
   * @example
   * tx.pushGuarded(tx.db.prepare('UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?').bind(amount, id, amount))
   */
  pushGuarded(statement: ReturnType<DB['prepare']>): void
}

/**
 * Fails (CHECK `once_guard_changed`) when the statement before it in the batch changed no row; inserts nothing
 * otherwise, so the table stays empty.
 */
const GUARD_TABLE = 'CREATE TABLE IF NOT EXISTS once_guards (changed INTEGER, CONSTRAINT once_guard_changed CHECK (changed > 0))'
const GUARD = 'INSERT INTO once_guards (changed) SELECT changes() WHERE changes() = 0'
const GUARD_MISSED = /once_guard_changed/

/**
 * A receiver store on Cloudflare D1.
 *
 * Transaction model: D1 runs a `batch()` as one SQL transaction, but cannot
 * hold a transaction open across the handler. So the store reads the request
 * id's record and the domain's next sequence, runs the handler (whose reads
 * go to the database directly and whose writes are pushed to
 * `c.var.receiver.tx`), then runs ONE batch: the dedupe insert (primary key
 * on the request id; for ordered requests a unique slot per domain and
 * sequence, and a CHECK that the sequence is still the domain's next), the
 * handler's statements, and the sequence advance. If another isolate applied
 * the same request id or slot in between, a constraint fails, the whole
 * batch rolls back, and the request is answered with what is stored now
 * (the winner's result). Consequences for handlers: a handler can run more
 * than once concurrently (only one run's writes commit), so do external side
 * effects only after the answer; and it must not trust what it read if
 * another, unordered request can write the same rows meanwhile: write
 * relative updates (`balance = balance + ?`), and push a write whose answer
 * depends on the read (`WHERE balance >= ?`) with `tx.pushGuarded`, which
 * rolls the batch back when it changes no row (a plain `push` is not
 * checked: the answer would be recorded though the write did nothing).
 * A D1 row holds at most 2 MB: a larger answer fails its batch (nothing is
 * applied), and so does a pushed statement that breaks a constraint or that
 * D1 refuses as written (an SQL error, the wrong number of bound
 * parameters, `BEGIN`/`SAVEPOINT`/`COMMIT`); such a request answers 500
 * `handler-failed` (it would fail the same way again; see `refusedForGood`). The tables are created on first use.
 *
 * @param db - the D1 binding
 * @returns the store
 * @example
 * import { env } from 'cloudflare:workers'
 * import { Hono } from 'hono'
 * import { d1Store, onceReceiver, type D1Tx, type ReceiverVariables } from 'hono-once/origin'
 *
 * const app = new Hono<{ Variables: ReceiverVariables<D1Tx<D1Database>> }>()
 * app.use('/accounts/*', onceReceiver({ store: d1Store(env.DB), secrets: { ONCE_SIGNING_SECRET: env.ONCE_SIGNING_SECRET } }))
 * app.post('/accounts/:id/deposits', async (c) => {
 *   // A malformed body is a final 400 (recorded), not a throw (500 handler-failed, which counts towards poison).
 *   const amount = ((await c.req.json().catch(() => null)) as { amount?: unknown } | null)?.amount
 *   if (typeof amount !== 'number' || !Number.isSafeInteger(amount)) return c.json({ error: 'amount: expected an integer' }, 400)
 *   const { tx } = c.var.receiver
 *   tx.push(tx.db.prepare('INSERT INTO accounts (id, balance) VALUES (?, ?) ON CONFLICT DO UPDATE SET balance = balance + excluded.balance').bind(c.req.param('id'), amount))
 *   return c.json({ ok: true }, 201)
 * })
 */
export function d1Store<DB extends D1DatabaseLike>(db: DB): ReceiverStore<D1Tx<DB>> {
  let ready: Promise<unknown> | undefined
  const init = (): Promise<unknown> =>
    (ready ??= db.batch([...SCHEMA, GUARD_TABLE].map((s) => db.prepare(s))).catch((err: unknown) => {
      ready = undefined
      throw err
    }))

  const state = async (claim: ApplyClaim): Promise<ClaimState> => {
    const record = db.prepare(SQL.selectRecord).bind(claim.requestId)
    if (claim.domain === undefined || claim.sequence === undefined) {
      const row = await record.first()
      return { record: row ? toRecord(row) : undefined, next: 1, slotOwner: undefined }
    }
    // One round trip, one consistent snapshot.
    const [rec, next, slot] = await db.batch([
      record,
      db.prepare(SQL.selectNext).bind(claim.domain),
      db.prepare(SQL.selectSlot).bind(claim.domain, claim.sequence),
    ])
    const row = rec?.results[0] as Record<string, unknown> | undefined
    const nextRow = next?.results[0] as { next_sequence: number } | undefined
    const slotRow = slot?.results[0] as { request_id: string } | undefined
    return { record: row ? toRecord(row) : undefined, next: nextRow ? Number(nextRow.next_sequence) : 1, slotOwner: slotRow?.request_id }
  }

  return onConnection(db, {
    async apply(claim: ApplyClaim, work: ApplyWork<D1Tx<DB>>): Promise<ApplyOutcome> {
      await init()
      const decision = decide(claim, await state(claim))
      if (decision.kind !== 'run') return decision
      const writes: D1StatementLike[] = []
      const reply = await work({
        db,
        push: (...statements) => void writes.push(...statements),
        pushGuarded: (statement) => void writes.push(statement, db.prepare(GUARD)),
      })
      if (!reply) return { kind: 'rolled-back' }
      const now = Date.now()
      const batch =
        claim.domain === undefined || claim.sequence === undefined
          ? [db.prepare(SQL.insertUnordered).bind(...insertParams(claim.requestId, undefined, false, reply, now)), ...writes]
          : [
              db.prepare(SQL.ensureDomain).bind(claim.domain),
              db
                .prepare(SQL.insertOrdered)
                .bind(...insertParams(claim.requestId, { domain: claim.domain, sequence: claim.sequence }, claim.noop, reply, now)),
              ...writes,
              db.prepare(SQL.advance).bind(claim.domain),
            ]
      try {
        await db.batch(batch)
        return { kind: 'applied' }
      } catch (err) {
        // Lost a race (a constraint failed)? Then answer what is stored now; otherwise it is a real failure.
        const after = decide(claim, await state(claim))
        if (after.kind === 'run') {
          // A guarded write found its row changed: the handler's read was stale, and a new run reads anew.
          if (GUARD_MISSED.test(String(err))) throw new WriteConflict(err)
          throw refusedForGood(err) ? new WritesRefused(err) : err
        }
        return after
      }
    },
    async nextSequence(domain) {
      await init()
      const row = await db.prepare(SQL.selectNext).bind(domain).first<{ next_sequence: number }>()
      return row ? Number(row.next_sequence) : 1
    },
    async nextSequences() {
      await init()
      return toNextMap((await db.prepare(SQL.selectAllNext).all()).results)
    },
    async applied(domain?: string): Promise<AppliedEntry[]> {
      await init()
      const stmt = domain === undefined ? db.prepare(SQL.selectApplied) : db.prepare(SQL.selectAppliedIn).bind(domain)
      return (await stmt.all()).results.map(toApplied)
    },
    async prune(appliedBefore) {
      await init()
      return (await db.prepare(SQL.prune).bind(appliedBefore).run()).meta.changes
    },
  })
}
