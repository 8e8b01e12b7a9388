/*
 * Which database failures the receiver answers 500 handler-failed (for good: the edge counts them towards poison)
 * rather than 503 store-unavailable (passing: retried). Review s30 (S10) found d1Store batches that fail on every
 * attempt (a wrong number of bound parameters, a pushed SAVEPOINT) classed as passing; the rule was a list of
 * messages, and is now the SQLite result code, whichever way the driver says it.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { refusedForGood } from '../../src/origin/index.js'

/** SQLite's primary result codes. */
const CODES: Record<string, number> = {
  ERROR: 1, INTERNAL: 2, PERM: 3, ABORT: 4, BUSY: 5, LOCKED: 6, NOMEM: 7, READONLY: 8, INTERRUPT: 9, IOERR: 10, CORRUPT: 11,
  NOTFOUND: 12, FULL: 13, CANTOPEN: 14, PROTOCOL: 15, EMPTY: 16, SCHEMA: 17, TOOBIG: 18, CONSTRAINT: 19, MISMATCH: 20,
  MISUSE: 21, NOLFS: 22, AUTH: 23, FORMAT: 24, RANGE: 25, NOTADB: 26, NOTICE: 27, WARNING: 28,
}
/** The codes of a statement that fails the same way on every attempt. */
const FOR_GOOD = new Set(['ERROR', 'TOOBIG', 'CONSTRAINT', 'MISMATCH', 'AUTH', 'RANGE'])

/** One failure as each driver reports it. */
const asD1 = (text: string, code: string) => Object.assign(new Error(`D1_ERROR: ${text}: SQLITE_${code}`), { cause: new Error(`${text}: SQLITE_${code}`) })
const asNodeSqlite = (text: string, code: string, extended: number) =>
  Object.assign(new Error(text), { code: 'ERR_SQLITE_ERROR', errcode: CODES[code]! | (extended << 8), errstr: 'x' })
const asBetterSqlite = (text: string, code: string, suffix: string) => Object.assign(new Error(text), { code: `SQLITE_${code}${suffix}` })

describe('refusedForGood: by the SQLite result code, whichever driver says it', () => {
  it('every primary code is classed the same from D1, node:sqlite and better-sqlite3, whatever the message says', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(CODES)),
        fc.string({ maxLength: 40 }),
        fc.integer({ min: 0, max: 40 }),
        fc.constantFrom('', '_CHECK', '_UNIQUE', '_SNAPSHOT'),
        (code, text, extended, suffix) => {
          const expected = FOR_GOOD.has(code)
          expect(refusedForGood(asD1(text, code))).toBe(expected)
          expect(refusedForGood(asNodeSqlite(text, code, extended))).toBe(expected)
          expect(refusedForGood(asBetterSqlite(text, code, suffix))).toBe(expected)
        },
      ),
    )
  })

  it('the code decides over words in the message: a busy database that mentions a constraint still passes', () => {
    expect(refusedForGood(asD1('database is locked while checking constraint failed', 'BUSY'))).toBe(false)
    expect(refusedForGood(asNodeSqlite('UNIQUE constraint failed (disk I/O error)', 'IOERR', 3))).toBe(false)
  })

  it.each<[string, unknown, boolean]>([
    // What workerd's local D1 answers for a pushed statement (logged when it ran them in a batch).
    ['D1: a statement bound with the wrong number of parameters', new Error('D1_ERROR: Wrong number of parameter bindings for SQL query.'), true],
    ...['BEGIN', 'SAVEPOINT', 'COMMIT', 'ROLLBACK', 'RELEASE', 'END'].map<[string, unknown, boolean]>((s) => [
      `D1: a pushed ${s}`,
      new Error(
        'D1_ERROR: To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements.',
      ),
      true,
    ]),
    ['D1: a statement that is only a comment', new Error('D1_ERROR: SQL code did not contain a statement.'), true],
    ['D1: a value it cannot bind', new Error("D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'"), true],
    ['D1: a PRAGMA the authorizer refuses', new Error('D1_ERROR: not authorized: SQLITE_AUTH'), true],
    ['D1: load_extension', new Error('D1_ERROR: not authorized: SQLITE_ERROR'), true],
    ['D1: a CHECK', new Error('D1_ERROR: CHECK constraint failed: balance >= 0: SQLITE_CONSTRAINT'), true],
    ['D1: a row over 2 MB', new Error('D1_ERROR: string or blob too big: SQLITE_TOOBIG'), true],
    ['D1: incomplete SQL', new Error('D1_ERROR: incomplete input: SQLITE_ERROR'), true],
    ['D1: a datatype mismatch', new Error('D1_ERROR: datatype mismatch: SQLITE_MISMATCH'), true],
    // Passing: the same batch may go through on the next attempt.
    ['D1: network connection lost', new Error('D1_ERROR: Network connection lost.'), false],
    ['D1: overloaded', new Error('D1_ERROR: D1 DB is overloaded. Too many requests queued.'), false],
    ['D1: reset', new Error('D1 DB storage operation exceeded timeout which caused object to be reset.'), false],
    ['D1: code updated', new Error('D1_ERROR: Durable Object reset because its code was updated.'), false],
    ['D1: internal error', new Error('D1_ERROR: internal error; reference = 0123abcd'), false],
    ['D1: busy', new Error('D1_ERROR: database is locked: SQLITE_BUSY'), false],
    ['a fetch failure', new TypeError('fetch failed'), false],
    ['not an Error', 'boom', false],
    ['nothing', undefined, false],
    // Drivers that give no code: SQLite's words.
    ['no code: a constraint', new Error('UNIQUE constraint failed: accounts.id'), true],
    ['no code: syntax', new Error('near "INSRT": syntax error'), true],
    ['no code: a full disk', new Error('database or disk is full'), false],
  ])('%s → %s', (_, err, expected) => {
    expect(refusedForGood(err)).toBe(expected)
  })
})
