/**
 * Method calls (onceObject()'s `call` option): the edge names a synchronous
 * method of the object and its arguments, and the object runs it with its
 * record in one `transactionSync()`. The same contract as the app path:
 * replay byte for byte, one effect under concurrent duplicates, 422, what is
 * final commits and what is not rolls back, a crash between effect and
 * record leaves both or neither. Effects are counted in the object's ledger.
 */
import { env } from 'cloudflare:workers'
import { type Context, Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { onceObject, PROBLEM_BASE } from '../../src/index.js'
import type { OddResult, OnceAccount } from './fixture.js'
import { callEdge, edge, effects, inside, newAccount, newKey, problemOf, recordOf, stubOf, until } from './helpers.js'

describe('method calls: replay and duplicates', () => {
  it.each([
    ['the isolate cache', undefined],
    ['the object', false as const],
  ])('runs the method once and replays its JSON reply byte for byte from %s', async (_name, replayCache) => {
    const { send } = callEdge({ replayCache })
    const a = newAccount()
    const k = newKey()
    const first = await send(a, k, { body: { amount: 250 } })
    expect(first.status).toBe(201)
    expect(first.headers.get('content-type')).toBe('application/json')
    const body = await first.text()
    const record = await recordOf(a, k)
    // The method knows its logical request's id (this.onceRequestId), as the app's routes read Once-Request-Id.
    expect(JSON.parse(body)).toEqual({ key: `"${k}"`, amount: 250, balance: 250, pad: '', requestId: record?.requestId })
    expect(await stubOf(a).effectIds(`"${k}"`)).toEqual([record?.requestId])
    for (let i = 0; i < 3; i++) {
      const again = await send(a, k, { body: { amount: 250 } })
      expect(again.status).toBe(201)
      expect(await again.text()).toBe(body)
      expect(again.headers.get('idempotent-replayed')).toBe('true')
    }
    expect(await effects(a, k)).toBe(1)
    expect(await recordOf(a, k)).toMatchObject({ state: 'committed', status: 201, attempt: 1 })
  })

  it('concurrent duplicates: one effect, one fresh answer, every other a replay of it', async () => {
    const { send } = callEdge({ replayCache: false })
    const a = newAccount()
    const k = newKey()
    const all = await Promise.all(Array.from({ length: 12 }, () => send(a, k)))
    expect(all.map((r) => r.status)).toEqual(Array(12).fill(201))
    expect(new Set(await Promise.all(all.map((r) => r.text()))).size).toBe(1)
    expect(all.filter((r) => r.headers.get('idempotent-replayed') === null)).toHaveLength(1)
    expect(await effects(a, k)).toBe(1)
  })

  it('answers 422 for the key reused with another body, from the object and from the cache', async () => {
    for (const replayCache of [false, undefined] as const) {
      const { send } = callEdge({ replayCache })
      const a = newAccount()
      const k = newKey()
      expect((await send(a, k, { body: { amount: 1 } })).status).toBe(201)
      const reused = await send(a, k, { body: { amount: 2 } })
      expect(reused.status).toBe(422)
      expect(await problemOf(reused)).toMatchObject({ type: `${PROBLEM_BASE}key-reused`, idempotency_key: k })
      expect(await effects(a, k)).toBe(1)
    }
  })

  it('shares records with the app path: a key used there is replayed, or 422, here', async () => {
    const a = newAccount()
    const k = newKey()
    expect((await edge().send(a, k)).status).toBe(201)
    // Same method, path and body: the same request, whichever path runs it.
    const again = await callEdge({ replayCache: false }).send(a, k)
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect((await callEdge({ replayCache: false }).send(a, k, { body: { amount: 5 } })).status).toBe(422)
    expect(await effects(a, k)).toBe(1)
  })

  it('runs a request without a key (required: false) without a record, every time', async () => {
    const { send } = callEdge({ required: false })
    const a = newAccount()
    expect((await send(a, undefined)).status).toBe(201)
    expect((await send(a, undefined)).status).toBe(201)
    expect(await inside(a, (_sql, obj: OnceAccount) => obj.balance())).toBe(200)
    // Outside a keyed method call there is no logical request: no id.
    expect(await stubOf(a).effectIds('')).toEqual([null, null])
    expect(await inside(a, (sql) => sql.exec('SELECT count(*) AS n FROM once_records').one().n)).toBe(0)
  })
})

describe('method calls: a duplicate of a running lease route', () => {
  it('waits in the object for it (inFlight wait) and gets its reply; past waitMs, or in reject mode, 409', async () => {
    const a = newAccount()
    const k = newKey()
    await stubOf(a).hold(`"${k}"`)
    // The app's lease route with this key runs (held at its gate); a method call of the same request arrives.
    const first = edge().send(a, k, { route: 'calls' })
    await until(async () => (await recordOf(a, k))?.state === 'in_flight')
    const waiting = callEdge({ waitMs: 5000, replayCache: false }).send(a, k, { route: 'calls' })
    expect((await callEdge({ waitMs: 50 }).send(a, k, { route: 'calls' })).status).toBe(409)
    expect((await callEdge({ inFlight: 'reject' }).send(a, k, { route: 'calls' })).status).toBe(409)
    await stubOf(a).open(`"${k}"`)
    const firstBody = await (await first).text()
    const dup = await waiting
    expect(dup.status).toBe(201)
    expect(dup.headers.get('idempotent-replayed')).toBe('true')
    expect(await dup.text()).toBe(firstBody)
    expect(await effects(a, k)).toBe(1)
  })
})

describe('method calls: what is final commits with the record, the rest rolls back', () => {
  it.each([
    ['a returned 5xx OnceReply', 'fail', 503, undefined],
    ['a throw (its message, which may hold secrets, only in the log)', 'throw', 500, /depositCall" threw \(its error is in the object's log\)\. Nothing was applied\.$/],
    ['a returned promise (the method awaits)', 'async', 500, /returned a promise/],
    ['a reply that is not JSON', 'bigint', 500, /not JSON/],
  ] as const)('rolls the write back after %s, leaves the key free, and a retry runs once', async (_name, mode, status, detail) => {
    const { send } = callEdge()
    const a = newAccount()
    const k = newKey()
    const failed = await send(a, k, { mode })
    expect(failed.status).toBe(status)
    if (detail) expect(await problemOf(failed)).toMatchObject({ type: `${PROBLEM_BASE}handler-failed`, idempotency_key: k, detail: expect.stringMatching(detail) })
    else expect(failed.headers.get('retry-after')).toBe('1')
    // The method wrote its ledger row before failing: the row went with the transaction.
    expect(await effects(a, k)).toBe(0)
    expect(await recordOf(a, k)).toMatchObject({ state: 'released', attempt: 1 })
    const firstId = (await recordOf(a, k))?.requestId
    const retry = await send(a, k)
    expect(retry.status).toBe(201)
    expect(await effects(a, k)).toBe(1)
    // The retry is the same logical request: the id the rolled-back attempt had.
    expect(await recordOf(a, k)).toMatchObject({ state: 'committed', attempt: 2, requestId: firstId })
    expect(await stubOf(a).effectIds(`"${k}"`)).toEqual([firstId])
  })

  it('commits a final refusal (an OnceReply 4xx) with the write before it, and replays it with its headers', async () => {
    const { send } = callEdge({ replayCache: false })
    const a = newAccount()
    const k = newKey()
    const refused = await send(a, k, { mode: 'refuse' })
    expect(refused.status).toBe(409)
    expect(refused.headers.get('set-cookie')).toBe('session=abc')
    const body = await refused.text()
    const again = await send(a, k, { mode: 'ok' })
    expect(again.status).toBe(409)
    expect(await again.text()).toBe(body)
    expect(again.headers.get('x-ledger')).toBe('main')
    expect(again.headers.get('set-cookie')).toBeNull()
    expect(await effects(a, k)).toBe(1)
  })

  it('stores a reply over maxReplyBytes as reply-lost, and never runs again', async () => {
    const { send } = callEdge({ maxReplyBytes: 10, replayCache: false })
    const a = newAccount()
    const k = newKey()
    expect((await send(a, k)).status).toBe(201)
    const again = await send(a, k)
    expect(again.status).toBe(500)
    expect(await problemOf(again)).toMatchObject({ type: `${PROBLEM_BASE}reply-lost` })
    expect(await effects(a, k)).toBe(1)
  })

  it('over 40 crashes between the write and the reply, the effect and its record are both there or both gone', async () => {
    const { send } = callEdge({ replayCache: false })
    const seen = { both: 0, neither: 0 }
    for (let i = 0; i < 40; i++) {
      const a = newAccount()
      const k = newKey()
      const res = await send(a, k, { mode: i % 2 === 0 ? 'abort-now' : 'abort-after' })
      expect([201, 503]).toContain(res.status)
      const n = await effects(a, k)
      const committed = (await recordOf(a, k))?.state === 'committed'
      expect(n).toBe(committed ? 1 : 0)
      seen[committed ? 'both' : 'neither']++
      let retry = await send(a, k)
      for (let j = 0; retry.status === 503 && j < 10; j++) retry = await send(a, k)
      expect(retry.status).toBe(201)
      expect(await effects(a, k)).toBe(1)
    }
    expect(seen.neither).toBeGreaterThan(0)
    expect(seen.both).toBeGreaterThan(0)
  })
})

describe('method calls: a result that cannot be a reply', () => {
  /** The edge of `oddCall`: the method writes its ledger row, then returns what `x-kind` names. */
  const send = (a: string, k: string, kind: OddResult) => {
    const app = new Hono<{ Bindings: Cloudflare.Env }>()
    app.onError((err, c) => c.text(`onError: ${String(err)}`, 500))
    app.post(
      '/acct/:name/odd',
      onceObject((c: Context) => env.ONCE_ACCOUNT.get(env.ONCE_ACCOUNT.idFromName(c.req.param('name') ?? '')), {
        replayCache: false,
        call: (c) => ({ method: 'oddCall', args: [c.req.header('idempotency-key') ?? '', kind], status: 201 }),
      }),
    )
    return app.request(`/acct/${a}/odd`, { method: 'POST', headers: { 'idempotency-key': `"${k}"` }, body: '{}' }, env)
  }

  // Committed, each of these left an effect whose every answer was a bare 500 thrown at the edge (a status or a
  // header no Response can carry), or a body that says nothing (a Response is JSON "{}", a function no bytes).
  it.each([
    ['an OnceReply with status 100', 'status-100', /status 100/],
    ['an OnceReply with status 600', 'status-600', /status 600/],
    ['an OnceReply whose status is not a number', 'status-text', /status "201"/],
    ['an OnceReply with a bad header name', 'header-name', /headers/],
    ['an OnceReply with a bad header value', 'header-value', /headers/],
    ['a Response', 'response', /a Response/],
    ['a function', 'function', /not JSON/],
  ] as const)('rolls the write back after %s: a handler-failed problem, the key free', async (_name, kind, detail) => {
    const a = newAccount()
    const k = newKey()
    const failed = await send(a, k, kind)
    expect(failed.status).toBe(500)
    expect(await problemOf(failed)).toMatchObject({ type: `${PROBLEM_BASE}handler-failed`, idempotency_key: k, detail: expect.stringMatching(detail) })
    expect(await effects(a, k)).toBe(0)
    expect(await recordOf(a, k)).toMatchObject({ state: 'released', attempt: 1 })
  })

  it('sends an OnceReply 204 without a body, first and on replay', async () => {
    const a = newAccount()
    const k = newKey()
    for (const replayed of [null, 'true']) {
      const res = await send(a, k, 'no-content')
      expect(res.status).toBe(204)
      expect(res.headers.get('idempotent-replayed')).toBe(replayed)
      expect(res.headers.get('x-a')).toBe('b')
      expect(await res.text()).toBe('')
    }
    expect(await effects(a, k)).toBe(1)
  })

  it('commits a method that nests transactionSync() or writes through the key-value API with its record', async () => {
    for (const kind of ['nested', 'kv'] as const) {
      const a = newAccount()
      const k = newKey()
      expect((await send(a, k, kind)).status).toBe(201)
      expect((await send(a, k, kind)).headers.get('idempotent-replayed')).toBe('true')
      expect(await effects(a, k)).toBe(1)
    }
  })
})

describe('method calls: configuration', () => {
  it('refuses a call option that is not a function, at start-up', () => {
    const stub = () => env.ONCE_ACCOUNT.get(env.ONCE_ACCOUNT.idFromName('x'))
    expect(() => onceObject(stub, { call: 'deposit' } as never)).toThrow(/onceObject\(\).*call: expected a function/)
  })

  it.each([
    ['no such method', { method: 'withdraw', args: [] }, /has no method "withdraw"/],
    ["one of OnceObject's own", { method: 'once', args: [] }, /has no method "once"/],
    ['the runtime fetch handler', { method: 'fetch', args: [] }, /has no method "fetch"/],
    ['a constructor', { method: 'constructor', args: [] }, /has no method "constructor"/],
    ['args that are not an array', { method: 'depositCall', args: 5 }, /must return \{ method/],
    ['a status out of range', { method: 'depositCall', args: [], status: 99 }, /must return \{ method/],
    // Not a fault of the object: a 503 "retry with the same key" here had the client retry for ever.
    ['args that cannot be sent to the object (a class instance)', { method: 'depositCall', args: [new (class Amount { cents = 1 })()] }, /arguments.*Could not serialize/],
    ['nothing', undefined, /must return \{ method/],
  ])('answers 500 misconfigured for %s, and runs nothing', async (_name, answer, detail) => {
    const app = new Hono<{ Bindings: Cloudflare.Env }>()
    const a = newAccount()
    app.post('/x', onceObject((c: Context) => env.ONCE_ACCOUNT.get(env.ONCE_ACCOUNT.idFromName(a)), { call: () => answer as never }))
    const res = await app.request('/x', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"` }, body: '{}' }, env)
    expect(res.status).toBe(500)
    const p = await problemOf(res)
    expect(p).toMatchObject({ type: `${PROBLEM_BASE}misconfigured`, retryable: false, detail: expect.stringMatching(detail) })
    // The object's own word, not the advice for a stub of the wrong class.
    expect(p.detail).not.toMatch(/stubOf must return/)
    expect(await inside(a, (_sql, obj: OnceAccount) => obj.balance())).toBe(0)
  })

  it('checks method names and arguments at compile time when the class is named', () => {
    const stub = (c: Context<{ Bindings: Cloudflare.Env }>) => c.env.ONCE_ACCOUNT.get(c.env.ONCE_ACCOUNT.idFromName('x'))
    onceObject<{ Bindings: Cloudflare.Env }, OnceAccount>(stub, { call: () => ({ method: 'depositCall', args: [1, 'k', 'ok', 0] }) })
    // @ts-expect-error -- not a method of OnceAccount
    onceObject<{ Bindings: Cloudflare.Env }, OnceAccount>(stub, { call: () => ({ method: 'withdraw', args: [] }) })
    // @ts-expect-error -- depositCall takes (amount, key, mode, replyBytes)
    onceObject<{ Bindings: Cloudflare.Env }, OnceAccount>(stub, { call: () => ({ method: 'depositCall', args: ['1'] }) })
    // @ts-expect-error -- OnceObject's own methods are not method calls
    onceObject<{ Bindings: Cloudflare.Env }, OnceAccount>(stub, { call: () => ({ method: 'once', args: [] }) })
  })
})
