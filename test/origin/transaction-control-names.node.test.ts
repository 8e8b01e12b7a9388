/*
 * (Review s30b.) transactionControl() takes `CREATE <one word> TRIGGER` for a trigger header and then a later
 * word BEGIN for its body, but TRIGGER and BEGIN are also plain identifiers in SQLite (fallback tokens). A view or a
 * table named `trigger` with a column `begin` puts the scanner "inside a trigger body", where it no longer sees the
 * COMMIT that follows: the handler commits midway, the answer says 503 ?0 (nothing applied), and every retry applies
 * the effect again.
 */
import { Hono } from 'hono'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { ONCE_HEADERS, onceReceiver, sqliteStore, type ReceiverVariables } from '../../src/origin/index.js'
import { transactionControl } from '../../src/origin/stores/transaction-control.js'

describe('review s30b F1: keywords used as names blind the transaction-control scanner', () => {
  it.each([
    'CREATE VIEW trigger AS SELECT 1 AS begin; COMMIT',
    'CREATE TABLE trigger (begin INTEGER); COMMIT',
  ])('finds the COMMIT in %s', (sql) => {
    expect(transactionControl(sql)).toBe('COMMIT')
  })

  it('a handler exec that commits midway is not applied twice by two deliveries', async () => {
    const db = new DatabaseSync(':memory:')
    db.exec('CREATE TABLE effects (request_id TEXT)')
    const app = new Hono<{ Variables: ReceiverVariables<DatabaseSync> }>()
    app.use('*', onceReceiver({ store: sqliteStore(db) }))
    app.post('/x', (c) => {
      const { tx, requestId } = c.var.receiver
      tx.exec(`INSERT INTO effects VALUES ('${requestId}'); DROP VIEW IF EXISTS trigger; CREATE VIEW trigger AS SELECT 1 AS begin; COMMIT`)
      return c.json({ ok: true }, 201)
    })
    const send = () => app.request('/x', { method: 'POST', headers: { [ONCE_HEADERS.requestId]: 'r-1' }, body: '{}' })
    const answers = [await send(), await send()].map((r) => `${r.status} ${r.headers.get(ONCE_HEADERS.applied)}`)
    const n = (db.prepare('SELECT COUNT(*) AS n FROM effects').get() as { n: number }).n
    // Either refused (nothing applied, ?0) or applied once: never an effect committed under a ?0 answer.
    expect({ answers, n }).toEqual({ answers: ['500 ?0', '500 ?0'], n: 0 })
  })
})

describe('review s30b F1 (END, an alias of COMMIT, read as the fake trigger body’s close)', () => {
  it('finds the END in CREATE TABLE trigger (begin INTEGER); END', () => {
    expect(transactionControl('CREATE TABLE trigger (begin INTEGER); END')).toBe('END')
  })
})
