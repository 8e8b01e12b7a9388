/**
 * Thrown by a store's `apply` when the database refused the handler's
 * writes (or the record of its answer) for good: see {@link refusedForGood}.
 * The same request fails the same way every time, so the receiver answers
 * 500 `handler-failed`, which the edge counts towards poison (DESIGN §6), not
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

/**
 * Thrown by a store's `apply` when a write the handler guarded changed no
 * row when it ran (d1Store's `tx.pushGuarded`): another request changed what
 * the handler read after it read it. Nothing was applied; the receiver
 * answers 503 `store-unavailable` (retryable), so the request runs again and
 * reads anew.
 *
 * @example
 * throw new WriteConflict(err)
 */
export class WriteConflict extends Error {
  constructor(override readonly cause: unknown) {
    super('a guarded write changed no row: what the handler read was changed meanwhile')
    this.name = 'WriteConflict'
  }
}

/**
 * SQLite's primary result codes that come from the statements themselves (their text, their bound values, the rows
 * they would write), by number: the same statements meet them on every attempt. Every other code (BUSY, LOCKED,
 * IOERR, FULL, NOMEM, INTERRUPT, SCHEMA, READONLY, CORRUPT, …) is about the database's state at the time, and passes.
 */
const STATEMENT_CODES = new Map([
  [1, 'ERROR'], // syntax, no such table or column, too many variables, not authorized
  [18, 'TOOBIG'], // a string, blob or row over the limit (D1: 2 MB)
  [19, 'CONSTRAINT'], // CHECK, UNIQUE, NOT NULL, a foreign key
  [20, 'MISMATCH'], // a value of the wrong type for a rowid or a STRICT column
  [23, 'AUTH'], // refused by the authorizer (D1: PRAGMA, ATTACH)
  [25, 'RANGE'], // a parameter index out of range
])
const STATEMENT_NAMES = new Set(STATEMENT_CODES.values())

/**
 * What D1 (and workerd's SQL) says without an SQLite code when it checks a batch's statements before SQLite runs
 * them, and what SQLite says of such failures when a driver gives neither a code nor its name.
 */
const STATEMENT_MESSAGES =
  /Wrong number of parameter bindings|To execute a transaction, please use|did not contain a statement|D1_TYPE_ERROR|constraint failed|too big|syntax error|incomplete input|no such (table|column|function)|has no column named|too many (SQL variables|terms)|datatype mismatch|not authorized/i

/**
 * Whether a database error is one the same statements would meet again,
 * on every attempt: a failure of the statements themselves, not of the
 * database at the time. By the SQLite result code when the driver gives one
 * (node:sqlite's `errcode`, better-sqlite3's `code`, the `: SQLITE_…` that D1
 * appends to its message): a syntax or schema error, a constraint, a value
 * too big or of the wrong type, a statement the authorizer refused. Without
 * a code, by what D1 says when it checks a batch's statements (a wrong
 * number of bound parameters, a pushed `BEGIN`/`SAVEPOINT`/`COMMIT`, an empty
 * statement, a value of a type it cannot bind). Anything else passes: busy
 * or locked, I/O, a full disk, a reset or overloaded D1, a network error, an
 * error it does not know.
 *
 * @param err - what the driver threw
 * @returns true for a failure for good
 * @example
 * refusedForGood(new Error('D1_ERROR: CHECK constraint failed: balance >= 0: SQLITE_CONSTRAINT')) // true
 * refusedForGood(new Error('D1_ERROR: Wrong number of parameter bindings for SQL query.')) // true
 * refusedForGood(new Error('D1_ERROR: database is locked: SQLITE_BUSY')) // false
 */
export function refusedForGood(err: unknown): boolean {
  const code = sqliteCode(err)
  if (code !== undefined) return STATEMENT_NAMES.has(code)
  return STATEMENT_MESSAGES.test(messages(err))
}

/** The primary SQLite result code's name (`CONSTRAINT`) that the error carries, if any. */
function sqliteCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const { errcode, code } = err as { errcode?: unknown; code?: unknown }
  // node:sqlite: the extended code; its low byte is the primary one.
  if (typeof errcode === 'number' && Number.isInteger(errcode)) return STATEMENT_CODES.get(errcode & 0xff) ?? `#${errcode & 0xff}`
  // better-sqlite3: SQLITE_CONSTRAINT_CHECK and the like; D1: "…: SQLITE_CONSTRAINT" at the end of the message.
  const named = [...`${messages(err)} ${typeof code === 'string' ? code : ''}`.matchAll(/\bSQLITE_([A-Z]+)/g)].pop()
  return named?.[1]
}

/** The error's message with its causes' (D1 puts the bare message in `cause`). */
function messages(err: unknown): string {
  const out: string[] = []
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    out.push(e instanceof Error ? e.message : String(e))
    if (typeof e !== 'object') break
  }
  return out.join(' ')
}
