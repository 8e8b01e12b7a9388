/*
 * sqliteStore needs the connection to say whether its transaction is open. Review s30 (S8): on node:sqlite before
 * 22.16 (no DatabaseSync#isTransaction) a rollback SQLite made by itself mid-handler went unseen; the handler's later
 * writes and the request's record committed on their own, and the retry replayed 201 ?1 for a half-applied request.
 */
import { Hono } from 'hono'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { ONCE_HEADERS, onceReceiver, sqliteStore, type ReceiverVariables } from '../../src/origin/index.js'

/** The connection as another driver shows it: `rename` maps property names (to undefined: hidden). */
const asDriver = (raw: DatabaseSync, rename: Record<string, string | undefined>) =>
  new Proxy(raw, {
    has: (t, p) => (typeof p === 'string' && p in rename ? rename[p] !== undefined : Reflect.has(t, p)),
    get(t, p) {
      const name = typeof p === 'string' && p in rename ? rename[p] : p
      if (name === undefined) return undefined
      const value = Reflect.get(t, name, t) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value
    },
  }) as DatabaseSync

/** A database where a best-effort audit insert makes SQLite roll the transaction back by itself (as SQLITE_FULL does). */
const fullOnAudit = () => {
  const raw = new DatabaseSync(':memory:')
  raw.exec('CREATE TABLE effects (request_id TEXT, part TEXT)')
  raw.exec('CREATE TABLE audit (n INTEGER)')
  raw.exec("CREATE TRIGGER audit_full BEFORE INSERT ON audit BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END")
  return raw
}

/** A transfer in two parts, with the audit row between them; the answers of two attempts and the parts kept. */
const transfer = async (raw: DatabaseSync, db: DatabaseSync) => {
  const app = new Hono<{ Variables: ReceiverVariables<DatabaseSync> }>()
  app.use('*', onceReceiver({ store: sqliteStore(db) }))
  app.post('/x', (c) => {
    const { tx, requestId } = c.var.receiver
    tx.prepare('INSERT INTO effects VALUES (?, ?)').run(requestId, 'debit')
    try {
      tx.prepare('INSERT INTO audit VALUES (1)').run()
    } catch {
      // best effort
    }
    try {
      tx.prepare('INSERT INTO effects VALUES (?, ?)').run(requestId, 'credit')
    } catch {
      // refused: the transaction is over
    }
    return c.json({ ok: true }, 201)
  })
  const send = () => app.request('/x', { method: 'POST', headers: { [ONCE_HEADERS.requestId]: 'r-1' }, body: '{}' })
  const answers = [await send(), await send()].map((r) => `${r.status} ${r.headers.get(ONCE_HEADERS.applied)}`)
  const parts = (raw.prepare('SELECT part FROM effects').all() as { part: string }[]).map((x) => x.part)
  return { answers, parts, recorded: (raw.prepare('SELECT COUNT(*) AS n FROM once_requests').get() as { n: number }).n }
}

describe('sqliteStore and the driver’s word on the open transaction', () => {
  it('refuses, at construction, a connection that cannot say (node:sqlite before 22.16), naming what it needs', () => {
    const old = asDriver(new DatabaseSync(':memory:'), { isTransaction: undefined })
    expect(() => sqliteStore(old)).toThrow(TypeError)
    expect(() => sqliteStore(old)).toThrow(/isTransaction \(Node >= 22\.16 or >= 24\), or a better-sqlite3 Database \(inTransaction\)/)
  })

  it.each<[string, (raw: DatabaseSync) => DatabaseSync]>([
    ['node:sqlite (isTransaction)', (raw) => raw],
    ['a better-sqlite3-shaped connection (inTransaction)', (raw) => asDriver(raw, { isTransaction: undefined, inTransaction: 'isTransaction' })],
  ])('%s: a rollback SQLite made by itself mid-handler keeps nothing, on every attempt (503 ?0)', async (_, driver) => {
    const raw = fullOnAudit()
    const quiet = console.error
    console.error = () => {}
    try {
      expect(await transfer(raw, driver(raw))).toEqual({ answers: ['503 ?0', '503 ?0'], parts: [], recorded: 0 })
    } finally {
      console.error = quiet
    }
  })
})
