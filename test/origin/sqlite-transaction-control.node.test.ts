/*
 * sqliteStore's `tx` refuses a transaction statement wherever it is in the text. Review s30 (S2): the guard looked
 * only at the start, so `tx.exec("INSERT …; COMMIT")` or a COMMIT after a comment committed midway; the answer said
 * "nothing was applied" (503 ?0), and every retry applied the effect again.
 */
import { Hono } from 'hono'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { ONCE_HEADERS, onceReceiver, PROBLEM_BASE, sqliteStore, type ReceiverVariables } from '../../src/origin/index.js'

/** A store whose handler runs `sql` through `tx` (exec or prepare().run()); what it threw, and the answer. */
const run = async (sql: string, how: 'exec' | 'prepare') => {
  const db = new DatabaseSync(':memory:')
  db.exec('CREATE TABLE effects (request_id TEXT)')
  db.exec('CREATE TABLE log (request_id TEXT)')
  db.exec('CREATE TABLE "end" ("begin" TEXT)')
  const app = new Hono<{ Variables: ReceiverVariables<DatabaseSync> }>()
  app.use('*', onceReceiver({ store: sqliteStore(db) }))
  let threw: unknown
  app.post('/x', (c) => {
    const { tx } = c.var.receiver
    try {
      if (how === 'exec') tx.exec(sql)
      else tx.prepare(sql).run()
    } catch (err) {
      threw = err
    }
    return c.json({ ok: true }, 201)
  })
  const res = await app.request('/x', { method: 'POST', headers: { [ONCE_HEADERS.requestId]: 'r-1' }, body: '{}' })
  return { threw, answer: `${res.status} ${res.headers.get(ONCE_HEADERS.applied)}`, db }
}

const REFUSED = /may not run BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT or RELEASE/

describe('sqliteStore: the handler’s tx refuses transaction statements anywhere in its text', () => {
  it.each([
    'COMMIT',
    '  commit;',
    'END TRANSACTION',
    'BEGIN IMMEDIATE',
    'ROLLBACK TO s1',
    'SAVEPOINT s1',
    'RELEASE s1',
    "INSERT INTO effects VALUES ('r'); COMMIT;",
    "INSERT INTO effects VALUES ('r');COMMIT",
    ';COMMIT',
    '-- end the unit of work\nCOMMIT',
    '/* close */ COMMIT',
    '/* a; b */ ROLLBACK',
    "INSERT INTO effects VALUES ('a'); /* x */ -- y\n  rollback",
    "INSERT INTO effects VALUES ('it''s'); END",
    'CREATE TEMP TRIGGER t1 AFTER INSERT ON effects BEGIN INSERT INTO log VALUES (new.request_id); END; COMMIT',
  ])('refuses %j before it runs (exec): nothing of it is written, and the request applies once', async (sql) => {
    const { threw, answer, db } = await run(sql, 'exec')
    expect(String(threw)).toMatch(REFUSED)
    expect(answer).toBe('201 ?1')
    expect(db.prepare('SELECT COUNT(*) AS n FROM effects').get()).toEqual({ n: 0 })
  })

  it.each(['-- x\nCOMMIT', '/* x */ SAVEPOINT s1', 'COMMIT'])('refuses %j through prepare() too', async (sql) => {
    expect(String((await run(sql, 'prepare')).threw)).toMatch(REFUSED)
  })

  it.each([
    "INSERT INTO effects VALUES ('a; COMMIT')",
    "INSERT INTO effects VALUES ('x') -- COMMIT",
    "INSERT INTO effects VALUES ('x'); /* ; COMMIT */",
    'INSERT INTO "end" ("begin") VALUES (\'commit\')',
    "INSERT INTO effects SELECT CASE WHEN 1 THEN 'x' END",
    'CREATE TEMP TRIGGER t2 AFTER INSERT ON effects BEGIN INSERT INTO log VALUES (new.request_id); END',
    "CREATE TEMP TRIGGER t3 AFTER INSERT ON effects BEGIN INSERT INTO log VALUES (new.request_id); END; INSERT INTO effects VALUES ('y')",
  ])('runs %j (the words are in a string, a name, a comment, a CASE or a trigger body)', async (sql) => {
    const { threw, answer } = await run(sql, 'exec')
    expect(threw).toBeUndefined()
    expect(answer).toBe('201 ?1')
  })

  it('a handler that lets the refusal throw answers 500 handler-failed with nothing applied, on every attempt', async () => {
    const db = new DatabaseSync(':memory:')
    db.exec('CREATE TABLE effects (request_id TEXT)')
    const app = new Hono<{ Variables: ReceiverVariables<DatabaseSync> }>()
    app.use('*', onceReceiver({ store: sqliteStore(db) }))
    app.post('/x', (c) => {
      c.var.receiver.tx.exec(`INSERT INTO effects VALUES ('${c.var.receiver.requestId}'); COMMIT;`)
      return c.json({ ok: true }, 201)
    })
    const quiet = console.error
    console.error = () => {}
    try {
      for (let attempt = 1; attempt <= 2; attempt++) {
        const res = await app.request('/x', { method: 'POST', headers: { [ONCE_HEADERS.requestId]: 'r-1' }, body: '{}' })
        expect([res.status, res.headers.get(ONCE_HEADERS.applied), ((await res.json()) as { type: string }).type]).toEqual([500, '?0', `${PROBLEM_BASE}handler-failed`])
      }
    } finally {
      console.error = quiet
    }
    expect(db.prepare('SELECT COUNT(*) AS n FROM effects').get()).toEqual({ n: 0 })
  })
})
