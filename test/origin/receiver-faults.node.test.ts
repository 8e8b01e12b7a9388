/**
 * Found by an adversarial review of the origin half (s27); each test failed on a7c798f (the control is marked).
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { validator } from 'hono/validator'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { memoryStore, ONCE_HEADERS, onceReceiver, sqliteStore, type MemoryTx, type ReceiverVariables } from '../../src/origin/index.js'

type SqlEnv = { Variables: ReceiverVariables<DatabaseSync> }
const post = (a: Hono<any>, path: string, headers: Record<string, string>, body = '{"amount":5}') =>
  a.request(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })
const count = (db: DatabaseSync, table: string) => Number((db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n)

describe('sqliteStore — the handler outlives its transaction', () => {
  it('F1b: behind hono/timeout, the abandoned handler writes through tx after the rollback (autocommit); the answer said ?0; the retry applies it again', async () => {
    const { timeout } = await import('hono/timeout')
    const db = new DatabaseSync(':memory:')
    db.exec('CREATE TABLE effects (request_id TEXT)')
    const app = new Hono<SqlEnv>()
    app.use('*', onceReceiver({ store: sqliteStore(db) }))
    app.post('/x', timeout(50), async (c) => {
      await new Promise((r) => setTimeout(r, Number(c.req.header('x-sleep') ?? 0)))
      c.var.receiver.tx.prepare('INSERT INTO effects VALUES (?)').run(c.var.receiver.requestId)
      return c.json({ ok: true }, 201)
    })
    const first = await post(app, '/x', { [ONCE_HEADERS.requestId]: 'r-late', 'x-sleep': '100' })
    expect(first.headers.get(ONCE_HEADERS.applied)).toBe('?0')
    await new Promise((r) => setTimeout(r, 150)) // the abandoned handler writes now
    const retry = await post(app, '/x', { [ONCE_HEADERS.requestId]: 'r-late', 'x-sleep': '0' })
    expect(retry.status).toBe(201)
    // Before (a7c798f): 2 — the late write was committed in autocommit (or inside whatever transaction is open then).
    expect(count(db, 'effects')).toBe(1)
  })
})

describe('Hono errors that carry an HTTP answer', () => {
  const make = () => {
    const store = memoryStore()
    let effects = 0
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.use('*', onceReceiver({ store, gapWaitMs: 0 }))
    // hono/validator throws HTTPException(400) on a body that is not JSON; bearerAuth, jwt, bodyLimit throw HTTPExceptions too.
    app.post('/v', validator('json', (v) => v), (c) => {
      c.var.receiver.tx.onCommit(() => effects++)
      return c.json({ ok: true }, 201)
    })
    app.post('/forbidden', () => {
      throw new HTTPException(403, { message: 'not your account' })
    })
    return { app, store, effects: () => effects }
  }

  it('F2: malformed JSON refused by hono/validator (HTTPException 400) is a final 400, not 500 handler-failed ?0 retried into poison', async () => {
    const { app, store } = make()
    const res = await post(app, '/v', { [ONCE_HEADERS.requestId]: 'r-v', [ONCE_HEADERS.domain]: 'acct-1', [ONCE_HEADERS.sequence]: '1' }, '{"amount":')
    expect(res.status).toBe(400)
    expect(res.headers.get(ONCE_HEADERS.applied)).toBe('?1')
    // The ordered domain moves on instead of stalling until the edge's poisonAfterMs (10 min).
    expect(await store.nextSequence('acct-1')).toBe(2)
  })

  it('F2b: throw new HTTPException(403) answers the 403 as a final answer (?1), not 500 handler-failed', async () => {
    const { app } = make()
    const res = await post(app, '/forbidden', { [ONCE_HEADERS.requestId]: 'r-f' })
    expect(res.status).toBe(403)
    expect(res.headers.get(ONCE_HEADERS.applied)).toBe('?1')
  })
})

describe('memoryStore says ?0 after it recorded the request', () => {
  it('F3: an onCommit effect that throws leaves the slot recorded and the other effects run, yet the answer is 503 ?0 "nothing was applied"', async () => {
    const store = memoryStore()
    let effects = 0
    let boom = true
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.use('*', onceReceiver({ store, gapWaitMs: 0 }))
    app.post('/x', (c) => {
      c.var.receiver.tx.onCommit(() => effects++)
      c.var.receiver.tx.onCommit(() => {
        if (boom) throw new Error('effect failed')
      })
      return c.json({ ok: true }, 201)
    })
    const first = await post(app, '/x', { [ONCE_HEADERS.requestId]: 'r-m', [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: '1' })
    boom = false
    const applied = first.headers.get(ONCE_HEADERS.applied)
    // Either the answer says applied, or nothing was recorded (slot 1 still next) and no effect ran.
    if (applied === '?0') {
      expect({ next: await store.nextSequence('d'), effects }).toEqual({ next: 1, effects: 0 })
    } else {
      expect(applied).toBe('?1')
    }
  })
})

describe('a handler that never settles', () => {
  it('F4: is given up at maxRunMs (504 handler-timeout, ?0, writes rolled back, a late write refused), and every other request goes on', async () => {
    const db = new DatabaseSync(':memory:')
    db.exec('CREATE TABLE effects (request_id TEXT)')
    const store = sqliteStore(db, { waitMs: 200 })
    const app = new Hono<SqlEnv>()
    app.use('*', onceReceiver({ store, waitMs: 200, gapWaitMs: 0, maxRunMs: 300 }))
    let release!: () => void
    const hung = new Promise<void>((r) => (release = r))
    let late: unknown
    app.post('/hang', async (c) => {
      const { tx, requestId } = c.var.receiver
      tx.prepare('INSERT INTO effects VALUES (?)').run(requestId)
      await hung // a fetch() without a timeout
      try {
        tx.prepare('INSERT INTO effects VALUES (?)').run(`${requestId} late`)
      } catch (err) {
        late = err
      }
      return c.json({ ok: true }, 201)
    })
    app.post('/ok', (c) => c.json({ ok: true }, 201))
    const res = await post(app, '/hang', { [ONCE_HEADERS.requestId]: 'r-hang' })
    expect(res.status).toBe(504)
    expect(res.headers.get(ONCE_HEADERS.applied)).toBe('?0')
    expect(((await res.json()) as { type: string }).type).toMatch(/\/handler-timeout$/)
    // Unrelated requests go on (other ids, other domains), and so does a retry of the given-up one.
    const other = await post(app, '/ok', { [ONCE_HEADERS.requestId]: 'r-other', [ONCE_HEADERS.domain]: 'elsewhere', [ONCE_HEADERS.sequence]: '1' })
    expect(other.status).toBe(201)
    // The abandoned handler wakes up: its late write is refused, and nothing of it was kept.
    release()
    await new Promise((r) => setTimeout(r, 0))
    for (let i = 0; i < 50 && late === undefined; i++) await new Promise((r) => setTimeout(r, 5))
    expect(String(late)).toMatch(/transaction is over/)
    expect(count(db, 'effects')).toBe(0)
  })
})

describe('held (control) — sqliteStore reopened on its file', () => {
  it('replays and continues the sequence after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's27-'))
    try {
      const file = join(dir, 'o.db')
      const mk = () => {
        const db = new DatabaseSync(file)
        db.exec('CREATE TABLE IF NOT EXISTS effects (request_id TEXT)')
        const store = sqliteStore(db)
        const app = new Hono<SqlEnv>()
        app.use('*', onceReceiver({ store, gapWaitMs: 0 }))
        app.post('/x', (c) => {
          c.var.receiver.tx.prepare('INSERT INTO effects VALUES (?)').run(c.var.receiver.requestId)
          return c.json({ seq: c.var.receiver.sequence }, 201)
        })
        return { db, app }
      }
      const a = mk()
      expect((await post(a.app, '/x', { [ONCE_HEADERS.requestId]: 'a1', [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: '1' })).status).toBe(201)
      a.db.close()
      const b = mk()
      const again = await post(b.app, '/x', { [ONCE_HEADERS.requestId]: 'a1', [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: '1' })
      expect([again.status, again.headers.get(ONCE_HEADERS.applied)]).toEqual([201, '?1'])
      expect((await post(b.app, '/x', { [ONCE_HEADERS.requestId]: 'a2', [ONCE_HEADERS.domain]: 'd', [ONCE_HEADERS.sequence]: '2' })).status).toBe(201)
      expect(count(b.db, 'effects')).toBe(2)
      b.db.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('an inner answer that says it applied nothing is recorded as the app’s final answer', () => {
  it('F7: onceReceiver mounted twice on one route (app.use + route-level, as the docs show both) records its own 409 in-flight as applied (?1): the handler never runs, ever', async () => {
    const store = memoryStore()
    let runs = 0
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.use('/accounts/*', onceReceiver({ store, waitMs: 100 }))
    app.post('/accounts/:id/deposits', onceReceiver({ store, waitMs: 100 }), (c) => {
      runs++
      return c.json({ ok: true }, 201)
    })
    const first = await post(app, '/accounts/a1/deposits', { [ONCE_HEADERS.requestId]: 'r-double' })
    const retry = await post(app, '/accounts/a1/deposits', { [ONCE_HEADERS.requestId]: 'r-double' })
    // Before (a7c798f): 409 in-flight with Once-Applied: ?1 both times (the inner refusal was recorded), runs = 0.
    expect([first.status, retry.status, runs]).toEqual([201, 201, 1])
  })

  it('F7b: a handler that relays an upstream receiver’s "409 in-flight, Once-Applied: ?0" gets it recorded as final (?1); the retry never runs it', async () => {
    const store = memoryStore()
    let runs = 0
    let upstreamBusy = true
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.use('*', onceReceiver({ store }))
    app.post('/relay', () => {
      runs++
      // What fetch() of another receiver-protected service returns while it is busy.
      if (upstreamBusy) {
        return new Response(JSON.stringify({ type: 'https://hono-once.dev/problems/in-flight', status: 409, retryable: true }), {
          status: 409,
          headers: { 'content-type': 'application/problem+json', 'retry-after': '1', [ONCE_HEADERS.applied]: '?0' },
        })
      }
      return Response.json({ ok: true }, { status: 201 })
    })
    const first = await post(app, '/relay', { [ONCE_HEADERS.requestId]: 'r-relay' })
    upstreamBusy = false
    const retry = await post(app, '/relay', { [ONCE_HEADERS.requestId]: 'r-relay' })
    expect(first.headers.get(ONCE_HEADERS.applied)).toBe('?0')
    expect([retry.status, runs]).toEqual([201, 2])
  })
})

describe('docs that do not run as written', () => {
  it('F9: the @example of d1Store() (src/origin/stores/d1.ts) passes the removed `secret` option, which onceReceiver() refuses at start-up', async () => {
    const { readFileSync } = await import('node:fs')
    const line = readFileSync('src/origin/stores/d1.ts', 'utf8').split('\n').find((l) => l.includes('onceReceiver({ store: d1Store('))
    expect(line).toBeDefined()
    // The example's options, as written, given to onceReceiver():
    const run = () => onceReceiver({ store: memoryStore(), ...(/secret: /.test(line!) ? { secret: 'x' } : { secrets: { K: 'x'.repeat(16) } }) } as never)
    expect(run).not.toThrow()
  })
})

describe('LOW — answers that mislead', () => {
  it('F11: a body already read by a middleware mounted before the receiver gives 400 "could not be read" (?0, retried for ever) with no hint of the cause', async () => {
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.use('*', async (c, next) => {
      await c.req.text() // a request logger
      await next()
    })
    app.use('*', onceReceiver({ store: memoryStore() }))
    app.post('/e', async (c) => c.json({ got: await c.req.json() }, 201))
    const res = await post(app, '/e', { [ONCE_HEADERS.requestId]: 'r-pre' }, '{"a":1}')
    expect(res.status).toBe(400)
    expect(((await res.json()) as { detail: string }).detail).toMatch(/read before onceReceiver\(\) ran .*mount onceReceiver\(\) first/)
  })
})

describe('LOW — a handler that returns no Response', () => {
  it('F13: is recorded and applied as "200, empty body" (?1) with its writes, instead of failing loudly (Hono alone answers 404)', async () => {
    let effects = 0
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.use('*', onceReceiver({ store: memoryStore() }))
    // A forgotten `return` on the success path: c.json() builds a Response that nobody returns.
    app.post('/e', ((c: import('hono').Context<{ Variables: ReceiverVariables<MemoryTx> }>) => {
      c.var.receiver.tx.onCommit(() => effects++)
      c.json({ ok: true }, 201)
    }) as never)
    const res = await post(app, '/e', { [ONCE_HEADERS.requestId]: 'r-noreturn' })
    expect({ status: res.status, applied: res.headers.get(ONCE_HEADERS.applied), effects }).toEqual({ status: 500, applied: '?0', effects: 0 })
  })
})

describe('several connections on one file, with PRAGMA busy_timeout', () => {
  // Two processes' stores, modelled as two connections on one file. SQLite's busy handler sleeps on the thread.
  it.each([
    ['set before the stores are made', true],
    ['set after the stores are made (in the app\'s setup)', false],
  ])('F15: a connection waiting for the write lock does not freeze the event loop, busy_timeout %s', async (_when, before) => {
    const dir = mkdtempSync(join(tmpdir(), 's27-busy-'))
    try {
      const file = join(dir, 'o.db')
      const open = () => {
        const db = new DatabaseSync(file)
        db.exec('PRAGMA journal_mode = WAL')
        if (before) db.exec('PRAGMA busy_timeout = 1500')
        return db
      }
      const [dbA, dbB] = [open(), open()]
      const a = sqliteStore(dbA)
      const b = sqliteStore(dbB)
      if (!before) for (const db of [dbA, dbB]) db.exec('PRAGMA busy_timeout = 1500')
      const reply = { status: 201, headers: [] as [string, string][], body: new Uint8Array() }
      let slowStarted!: () => void
      const started = new Promise<void>((r) => (slowStarted = r))
      const slow = a.apply({ requestId: 'slow', noop: false }, async () => {
        slowStarted()
        await new Promise((r) => setTimeout(r, 300)) // a handler that takes its time, holding the write lock
        return reply
      })
      await started
      // How long the event loop stalls while b waits for a's write lock.
      let worst = 0
      let last = Date.now()
      const tick = setInterval(() => {
        worst = Math.max(worst, Date.now() - last)
        last = Date.now()
      }, 5)
      const fast = b.apply({ requestId: 'fast', noop: false }, async () => reply)
      await Promise.all([slow, fast])
      clearInterval(tick)
      // Before (a7c798f) the loop froze for the whole busy_timeout (a's handler could not even finish meanwhile), then b failed.
      expect(worst).toBeLessThan(200)
      expect(await fast).toEqual({ kind: 'applied' })
      // The app's setting is its own again afterwards.
      expect(dbB.prepare('PRAGMA busy_timeout').get()).toEqual({ timeout: 1500 })
      dbA.close()
      dbB.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
