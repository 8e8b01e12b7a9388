/*
 * (Review s30b.) S4's step-aside compares stores by object. A mounted app that builds its own sqliteStore(db) on the
 * same connection (a sub-app module with its own `const store = sqliteStore(db)`) is not taken for nesting: the inner
 * receiver applies on its own, waits for the connection the outer's transaction holds (one mutex per db), gives up
 * after waitMs with 503 store-unavailable ?0, which the outer passes on (rolled back): never applied, on every retry.
 */
import { Hono } from 'hono'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { ONCE_HEADERS, onceReceiver, sqliteStore, type ReceiverVariables } from '../../src/origin/index.js'

describe('review s30b F5: a mounted app with its own sqliteStore on the same connection', () => {
  it('is applied once', async () => {
    const db = new DatabaseSync(':memory:')
    db.exec('CREATE TABLE effects (request_id TEXT)')
    const inner = new Hono<{ Variables: ReceiverVariables<DatabaseSync> }>()
    inner.use('*', onceReceiver({ store: sqliteStore(db, { waitMs: 300 }), waitMs: 300 }))
    inner.post('/deposits', (c) => {
      c.var.receiver.tx.prepare('INSERT INTO effects VALUES (?)').run(c.var.receiver.requestId)
      return c.json({ ok: true }, 201)
    })
    const app = new Hono()
    app.use('*', onceReceiver({ store: sqliteStore(db, { waitMs: 300 }), waitMs: 300 }))
    app.mount('/v1', inner.fetch)
    const res = await app.request('/v1/deposits', { method: 'POST', headers: { [ONCE_HEADERS.requestId]: 'r-1' }, body: '{}' })
    const text = await res.clone().text()
    expect(`${res.status} ${res.headers.get(ONCE_HEADERS.applied)}`, text).toBe('201 ?1')
    expect(db.prepare('SELECT COUNT(*) AS n FROM effects').get()).toEqual({ n: 1 })
  })
})
