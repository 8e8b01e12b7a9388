/*
 * A final answer whose body fails while the receiver reads it to record it. Found by review s30 (S1): it was
 * answered 503 store-unavailable (retryable, never poison) on every attempt, so an ordered domain stalled for good.
 */
import { Hono, type MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { memoryStore, ONCE_HEADERS, onceReceiver, PROBLEM_BASE, sqliteStore, type MemoryTx, type ReceiverVariables } from '../../src/origin/index.js'
import { verdictOf } from '../../src/shared/applied.js'

const encoder = new TextEncoder()
/** A body that gives `chunks` and then errors, as a template stream or a serializer that throws halfway would. */
const breaking = (chunks: string[]) => {
  const queue = [...chunks]
  return new ReadableStream<Uint8Array>({
    pull(ctl) {
      const next = queue.shift()
      if (next === undefined) ctl.error(new Error('template render failed'))
      else ctl.enqueue(encoder.encode(next))
    },
  })
}
const ordered = (requestId: string, sequence: number) => ({ [ONCE_HEADERS.requestId]: requestId, [ONCE_HEADERS.domain]: 'acct-1', [ONCE_HEADERS.sequence]: String(sequence) })
const post = (app: Hono<any>, headers: Record<string, string>) => app.request('/x', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' })
/** How the edge reads the answer, with what the problem says. */
const read = async (res: Response) => {
  const bytes = new Uint8Array(await res.arrayBuffer())
  const problem = JSON.parse(new TextDecoder().decode(bytes)) as { type: string; retryable: boolean }
  return { status: res.status, applied: res.headers.get(ONCE_HEADERS.applied), type: problem.type, retryable: problem.retryable, verdict: verdictOf(res.status, res.headers, bytes) }
}
const handlerFailed = { status: 500, applied: '?0', type: `${PROBLEM_BASE}handler-failed`, retryable: false, verdict: { kind: 'not-applied', reason: 'handler-failed', permanent: true } }

/** Ways the app's answer can break while it is read. */
const answers: [string, (c: { res: Response }) => Response | Promise<Response>, MiddlewareHandler?][] = [
  ['a body stream that errors at once', () => new Response(breaking([]), { status: 201 })],
  ['a body stream that errors after its first chunk', () => new Response(breaking(['{"id":']), { status: 201 })],
  ['a 4xx whose body errors', () => new Response(breaking(['{"error":']), { status: 422 })],
  [
    'a body an inner middleware already read',
    () => new Response('{"ok":true}', { status: 201 }),
    async (c, next) => {
      await next()
      await c.res.text()
    },
  ],
  [
    "an HTTPException whose response's body errors",
    () => {
      throw new HTTPException(409, { res: new Response(breaking(['{"error":']), { status: 409 }) })
    },
  ],
]

describe('a final answer whose body cannot be read is the app’s failure, not the store’s', () => {
  it.each(answers)('%s: 500 handler-failed ?0 (permanent) on every attempt; nothing recorded, the domain not moved on', async (_, answer, inner) => {
    const store = memoryStore()
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.use('*', onceReceiver({ store, gapWaitMs: 0 }))
    if (inner) app.use('*', inner)
    let runs = 0
    let effects = 0
    app.post('/x', (c) => {
      runs++
      c.var.receiver.tx.onCommit(() => effects++)
      return answer(c)
    })
    for (let attempt = 1; attempt <= 3; attempt++) expect(await read(await post(app, ordered('r-1', 1)))).toEqual(handlerFailed)
    expect({ runs, effects, next: await store.nextSequence('acct-1') }).toEqual({ runs: 3, effects: 0, next: 1 })
  })

  it("rolls back the handler's SQL writes (sqliteStore)", async () => {
    const db = new DatabaseSync(':memory:')
    db.exec('CREATE TABLE effects (request_id TEXT)')
    const app = new Hono<{ Variables: ReceiverVariables<DatabaseSync> }>()
    app.use('*', onceReceiver({ store: sqliteStore(db), gapWaitMs: 0 }))
    app.post('/x', (c) => {
      c.var.receiver.tx.prepare('INSERT INTO effects VALUES (?)').run(c.var.receiver.requestId)
      return new Response(breaking(['{"id":']), { status: 201 })
    })
    expect(await read(await post(app, ordered('r-1', 1)))).toEqual(handlerFailed)
    expect(db.prepare('SELECT COUNT(*) AS n FROM effects').get()).toEqual({ n: 0 })
    expect(db.prepare('SELECT COUNT(*) AS n FROM once_requests').get()).toEqual({ n: 0 })
  })

  it('a body that reads is still recorded and replayed (the neighbour that works)', async () => {
    const app = new Hono<{ Variables: ReceiverVariables<MemoryTx> }>()
    app.use('*', onceReceiver({ store: memoryStore(), gapWaitMs: 0 }))
    app.post('/x', () => new Response(new Blob(['{"id":', '1}']).stream(), { status: 201 }))
    const first = await post(app, ordered('r-1', 1))
    const again = await post(app, ordered('r-1', 1))
    expect([first.status, first.headers.get(ONCE_HEADERS.applied), await first.text()]).toEqual([201, '?1', '{"id":1}'])
    expect([again.status, again.headers.get(ONCE_HEADERS.applied), await again.text()]).toEqual([201, '?1', '{"id":1}'])
  })
})
