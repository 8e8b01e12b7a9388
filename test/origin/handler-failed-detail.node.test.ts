/*
 * What a 500 handler-failed tells the client, and what stays in the origin's log. Review s30 (S5) and the security
 * audit: the problem's detail carried the thrown error's message (a connection string, SQL, a customer's data), and
 * the edge passes a permanent refusal on to the client.
 */
import { Hono } from 'hono'
import { DatabaseSync } from 'node:sqlite'
import { inspect } from 'node:util'
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest'
import { memoryStore, ONCE_HEADERS, onceReceiver, PROBLEM_BASE, sqliteStore, type MemoryTx, type ReceiverVariables } from '../../src/origin/index.js'

const SECRET = 'postgres://ledger:hunter2@10.0.3.7:5432/ledger'
const post = (app: Hono<any>) => app.request('/x', { method: 'POST', headers: { [ONCE_HEADERS.requestId]: 'r-1' }, body: '{}' })
const named = (name: string) => Object.assign(new Error(`connect ECONNREFUSED ${SECRET}`), { name })

let logged: MockInstance<typeof console.error>
beforeEach(() => {
  logged = vi.spyOn(console, 'error').mockImplementation(() => {})
})
afterEach(() => logged.mockRestore())
/** Everything the origin logged, as text. */
const log = () => logged.mock.calls.map((args) => args.map((a) => (typeof a === 'string' ? a : inspect(a))).join(' ')).join('\n')

describe('500 handler-failed says what happened in general terms; the error goes to the origin’s log', () => {
  it.each<[string, () => unknown, string]>([
    ['an Error', () => new Error(`connect ECONNREFUSED ${SECRET}`), 'The handler threw (Error)'],
    ['a TypeError', () => new TypeError(`cannot read ${SECRET}`), 'The handler threw (TypeError)'],
    ['an Error whose name is not a name', () => named(`Error ${SECRET}`), 'The handler threw (an Error)'],
    ['a string', () => `failed on ${SECRET}`, 'The handler threw (a string, not an Error)'],
    ['an object', () => ({ dsn: SECRET }), 'The handler threw (an object, not an Error)'],
  ])('%s: the detail names its kind, never its message', async (_, thrown, detail) => {
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.use('*', onceReceiver({ store: memoryStore() }))
    app.post('/x', () => {
      throw thrown()
    })
    const res = await post(app)
    const text = await res.text()
    expect([res.status, res.headers.get(ONCE_HEADERS.applied)]).toEqual([500, '?0'])
    expect(JSON.parse(text)).toMatchObject({ type: `${PROBLEM_BASE}handler-failed`, detail: expect.stringContaining(detail) })
    expect(text).not.toContain('hunter2')
    expect(log()).toContain('r-1')
    expect(log()).toContain('hunter2')
  })

  it("a final answer whose body fails: the stream's error stays in the log", async () => {
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.use('*', onceReceiver({ store: memoryStore() }))
    app.post('/x', () => new Response(new ReadableStream({ pull: (ctl) => ctl.error(new Error(`render ${SECRET}`)) }), { status: 201 }))
    const text = await (await post(app)).text()
    expect(JSON.parse(text)).toMatchObject({ type: `${PROBLEM_BASE}handler-failed`, detail: expect.stringContaining("The handler's answer (201) could not be read (Error)") })
    expect(text).not.toContain('hunter2')
    expect(log()).toContain('hunter2')
  })

  it("the database refused the writes for good: its words (table, column, the value) stay in the log", async () => {
    const db = new DatabaseSync(':memory:')
    db.exec('PRAGMA foreign_keys = ON')
    db.exec('CREATE TABLE owners (id TEXT PRIMARY KEY)')
    db.exec('CREATE TABLE cards (number TEXT, owner TEXT REFERENCES owners (id) DEFERRABLE INITIALLY DEFERRED)')
    const app = new Hono<{ Variables: ReceiverVariables<DatabaseSync> }>()
    app.use('*', onceReceiver({ store: sqliteStore(db) }))
    app.post('/x', (c) => {
      c.var.receiver.tx.prepare('INSERT INTO cards VALUES (?, ?)').run('4111 1111 1111 1111', 'nobody')
      return c.json({ ok: true }, 201)
    })
    const res = await post(app)
    const text = await res.text()
    expect(JSON.parse(text)).toMatchObject({ type: `${PROBLEM_BASE}handler-failed`, detail: expect.stringContaining("The database refused the handler's writes for good") })
    expect(text).not.toMatch(/FOREIGN KEY|cards/)
    expect(log()).toMatch(/FOREIGN KEY constraint failed/)
  })

  it('a handler that returned no response says so (nothing secret in it, nothing to log)', async () => {
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.use('*', onceReceiver({ store: memoryStore() }))
    app.post('/x', (async () => {}) as never)
    const res = await post(app)
    expect(await res.json()).toMatchObject({ type: `${PROBLEM_BASE}handler-failed`, detail: 'The handler returned no response (a missing return?); its writes were rolled back.' })
  })
})
