/*
 * A receiver in an app reached through a new Context (app.mount(), subApp.fetch(c.req.raw)), under a receiver on the
 * same store. Review s30 (S4): the inner one did not step aside; it waited for the outer's lock and answered
 * 409 in-flight ?0, passed on, on every retry: the request never applied and never poisoned.
 */
import { Hono } from 'hono'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { memoryStore, ONCE_HEADERS, onceReceiver, sqliteStore, type MemoryTx, type ReceiverStore, type ReceiverVariables } from '../../src/origin/index.js'

const post = (app: Hono<any>, path: string, requestId: string) =>
  app.request(path, { method: 'POST', headers: { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: requestId }, body: '{"amount":5}' })
const answer = async (res: Response) => `${res.status} ${res.headers.get(ONCE_HEADERS.applied)} ${await res.text()}`

/** An inner app with its own receiver on `store`: a deposit that reads its body and writes through `tx.onCommit`. */
function innerApp(store: ReceiverStore<MemoryTx>, effects: string[]) {
  const inner = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
  inner.use('*', onceReceiver({ store, waitMs: 200 }))
  inner.post('/deposits', async (c) => {
    const { amount } = await c.req.json<{ amount: number }>()
    const { requestId, tx } = c.var.receiver
    tx.onCommit(() => effects.push(`${requestId}:${amount}`))
    // The mark the outer receiver put on the request is not the handler's to see.
    const marks: string[] = []
    c.req.raw.headers.forEach((_, name) => void (name.startsWith('x-hono-once') && marks.push(name)))
    return c.json({ amount, marks }, 201)
  })
  return inner
}

describe('a receiver on the same store inside a mounted app steps aside', () => {
  it('app.mount(): applied once, its writes through the outer transaction, replayed on a repeat', async () => {
    const store = memoryStore()
    const effects: string[] = []
    const app = new Hono()
    app.use('*', onceReceiver({ store, waitMs: 200 }))
    app.mount('/v1', innerApp(store, effects).fetch)
    const answers = [await answer(await post(app, '/v1/deposits', 'r-1')), await answer(await post(app, '/v1/deposits', 'r-1'))]
    expect(answers).toEqual(Array(2).fill('201 ?1 {"amount":5,"marks":[]}'))
    expect(effects).toEqual(['r-1:5'])
  })

  it('subApp.fetch(c.req.raw) from a handler: the same', async () => {
    const store = memoryStore()
    const effects: string[] = []
    const sub = innerApp(store, effects)
    const app = new Hono()
    app.post('/deposits', onceReceiver({ store, waitMs: 200 }), (c) => sub.fetch(c.req.raw))
    expect(await answer(await post(app, '/deposits', 'r-1'))).toBe('201 ?1 {"amount":5,"marks":[]}')
    expect(effects).toEqual(['r-1:5'])
  })

  it('sqliteStore: the inner handler writes through the outer transaction (one commit, nothing waits for the connection)', async () => {
    const db = new DatabaseSync(':memory:')
    db.exec('CREATE TABLE effects (request_id TEXT)')
    const store = sqliteStore(db, { waitMs: 200 })
    const inner = new Hono<{ Variables: ReceiverVariables<DatabaseSync> }>()
    inner.use('*', onceReceiver({ store, waitMs: 200 }))
    inner.post('/deposits', (c) => {
      c.var.receiver.tx.prepare('INSERT INTO effects VALUES (?)').run(c.var.receiver.requestId)
      return c.json({ ok: true }, 201)
    })
    const app = new Hono()
    app.use('*', onceReceiver({ store, waitMs: 200 }))
    app.mount('/v1', inner.fetch)
    expect((await post(app, '/v1/deposits', 'r-1')).status).toBe(201)
    expect((await post(app, '/v1/deposits', 'r-1')).status).toBe(201)
    expect(db.prepare('SELECT COUNT(*) AS n FROM effects').get()).toEqual({ n: 1 })
  })

  it('a receiver on another store (an origin a handler relays to in this process) applies the request in its own store', async () => {
    const effects: string[] = []
    const other = innerApp(memoryStore(), effects)
    const app = new Hono()
    app.post('/deposits', onceReceiver({ store: memoryStore(), waitMs: 200 }), (c) => other.fetch(c.req.raw))
    expect(await answer(await post(app, '/deposits', 'r-1'))).toMatch(/^201 \?1 \{"amount":5,"marks":\["x-hono-once-applying-/)
    expect(effects).toEqual(['r-1:5'])
  })

  it('a request that only carries a mark of its own (not one this process gave) is applied by the receiver as usual', async () => {
    const store = memoryStore()
    const effects: string[] = []
    const app = new Hono()
    app.mount('/v1', innerApp(store, effects).fetch)
    const res = await app.request('/v1/deposits', {
      method: 'POST',
      headers: { 'content-type': 'application/json', [ONCE_HEADERS.requestId]: 'r-1', 'x-hono-once-applying-0000': 'forged' },
      body: '{"amount":5}',
    })
    expect(res.status).toBe(201)
    expect(effects).toEqual(['r-1:5'])
  })
})
