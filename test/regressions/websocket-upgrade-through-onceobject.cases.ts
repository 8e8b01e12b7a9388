/**
 * Review s32 (object) H2: a WebSocket upgrade (an object app's 101 with its `webSocket`) forwarded by onceObject().
 * The socket cannot travel in the RPC, and no Response outside 200–599 can be built without one. Before the fix,
 * without a key the edge's own failure to build the answer was caught with the RPC's errors and answered 503
 * "could not be reached", Retry-After: 1 (retried for ever); with a key (GET in `methods`) the 101 was committed
 * with its record, and the first answer and every replay were a bare 500. Now the object refuses any answer outside
 * 200–599 on every path (never committed; its socket closed) with a final handler-failed problem saying why.
 */
import { type Context, Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { onceObject, onceRoute, PROBLEM_BASE } from '../../src/index.js'
import type { OnceAnswer, OnceObjectApi } from '../../src/durable/once-object-types.js'
import { edge, install, newAccount, newKey, rows, write } from '../once-object/installed.js'
import { recordOf } from '../once-object/helpers.js'

/** A socket route that writes a row tagged `x-tag` first; `closed` settles when its end of the socket hears a close. */
const socketApp = (lease: boolean, closed?: () => void) => (obj: Parameters<Parameters<typeof install>[1]>[0]) => {
  const upgrade = (c: Context) => {
    write(obj['ctx'].storage.sql, c.req.header('x-tag'), 'upgraded')
    const pair = new WebSocketPair()
    pair[1].accept()
    pair[1].addEventListener('close', () => closed?.())
    return new Response(null, { status: 101, webSocket: pair[0] })
  }
  return lease ? new Hono().get('/acct/:name/socket', onceRoute({ lease: true }), upgrade) : new Hono().get('/acct/:name/socket', upgrade)
}

type Problem = { type: string; detail: string; retryable: boolean }

describe('a WebSocket upgrade sent through onceObject()', () => {
  it('without a key: a final handler-failed problem that says why, not a retryable 503; its socket is closed', async () => {
    const a = newAccount()
    let closed!: () => void
    const hung = new Promise<void>((resolve) => (closed = resolve))
    await install(a, socketApp(false, closed))
    const { send } = edge({ replayCache: false })
    const res = await send(a, 'socket', undefined, { method: 'GET', headers: { upgrade: 'websocket' } })
    const body = (await res.json()) as Problem
    expect({ status: res.status, retryAfter: res.headers.get('retry-after'), type: body.type, retryable: body.retryable }, body.detail).toEqual({
      status: 500,
      retryAfter: null,
      type: `${PROBLEM_BASE}handler-failed`,
      retryable: false,
    })
    expect(body.detail).toMatch(/answered 101 \(a WebSocket upgrade\).*What it wrote before stays/)
    await hung // the app's end of the socket is not left open
  })

  it.each([
    ['a transaction route', false, 0, /rolled back/],
    ['a lease route', true, 1, /stays.*key is released/],
  ] as const)('with a key (GET in methods), %s: never committed, answered the same problem on every attempt', async (_name, lease, kept, writes) => {
    const a = newAccount()
    await install(a, socketApp(lease))
    const { send } = edge({ replayCache: false, methods: ['GET', 'POST'] })
    const k = newKey()
    const tag = newKey()
    const res = await send(a, 'socket', k, { method: 'GET', headers: { upgrade: 'websocket', 'x-tag': tag } })
    const body = (await res.json()) as Problem
    expect(await rows(a, tag)).toBe(kept)
    const again = await send(a, 'socket', k, { method: 'GET', headers: { upgrade: 'websocket', 'x-tag': tag } })
    const record = await recordOf(a, k)
    expect({ first: res.status, type: body.type, again: again.status, record: record?.state }).toEqual({
      first: 500,
      type: `${PROBLEM_BASE}handler-failed`,
      again: 500,
      record: 'released',
    })
    expect(body.detail).toMatch(writes)
  })

  it.each<[string, OnceAnswer]>([
    ['a new answer', { kind: 'new', requestId: 'r1', reply: { status: 101, headers: [], body: new Uint8Array() }, committed: true, expiresAt: Date.now() + 60_000 }],
    ['a replay', { kind: 'replay', requestId: 'r1', reply: { status: 101, headers: [], body: new Uint8Array() }, expiresAt: Date.now() + 60_000 }],
    ['a keyless answer', { kind: 'plain', reply: { status: 101, headers: [], body: new Uint8Array() } }],
  ])('a 101 an object of an older release answers as %s: the edge answers handler-failed, not a crash or a 503', async (_name, answer) => {
    const stub: OnceObjectApi = { once: async () => answer, onceCall: async () => answer }
    const app = new Hono().all('/x', onceObject(() => stub as never, { required: false, replayCache: false }))
    const keyed = answer.kind !== 'plain'
    const res = await app.request('/x', { method: 'POST', headers: keyed ? { 'idempotency-key': `"${newKey()}"` } : {}, body: '{}' })
    expect({ status: res.status, type: ((await res.json()) as Problem).type }).toEqual({ status: 500, type: `${PROBLEM_BASE}handler-failed` })
  })
})
