/**
 * Thrown by a store's `apply` when the database refused the handler's
 * writes (or the record of its answer) for good: a constraint (`CHECK`,
 * `UNIQUE`, a deferred foreign key), a row over the database's size limit
 * (D1: 2 MB), an SQL error in a statement the handler pushed. The same
 * request fails the same way every time, so the receiver answers 500
 * `handler-failed`, which the edge counts towards poison (DESIGN §6), not
 * 503 `store-unavailable`, which it retries as passing. Nothing was applied.
 * A store of your own throws it for such failures too.
 *
 * @example
 * try { await db.batch(writes) } catch (err) { throw refusedForGood(err) ? new WritesRefused(err) : err }
 */
export class WritesRefused extends Error {
  constructor(override readonly cause: unknown) {
    super(`the database refused the writes: ${cause instanceof Error ? cause.message : String(cause)}`)
    this.name = 'WritesRefused'
  }
}

/** What SQLite (and D1, which says the same) answers for a statement that will fail the same way every time. */
const FOR_GOOD =
  /SQLITE_(CONSTRAINT|TOOBIG|MISMATCH|RANGE)|constraint failed|too big|syntax error|incomplete input|no such (table|column|function)|has no column named|too many (SQL variables|terms)/i

/**
 * Whether a database error is one the same statements would meet again
 * (see {@link WritesRefused}); network errors, busy or overloaded
 * databases and I/O errors pass.
 *
 * @param err - what the driver threw
 * @returns true for a failure for good
 * @example
 * refusedForGood(new Error('D1_ERROR: CHECK constraint failed: balance >= 0: SQLITE_CONSTRAINT')) // true
 */
export function refusedForGood(err: unknown): boolean {
  return FOR_GOOD.test(err instanceof Error ? `${err.message} ${String((err as { code?: unknown }).code ?? '')}` : String(err))
}
