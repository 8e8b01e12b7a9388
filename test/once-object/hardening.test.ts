/**
 * What an adversarial review of `OnceObject` / `onceObject()` found (session
 * 26), one test per kind: a lease route reached by another spelling of its
 * path, a lease route past `maxRunMs`, a forged `Once-Request-Id`, a
 * keyless request sent twice, a keyed GET, bodies and replies too large for
 * one RPC, and a re-entrant method call's request id.
 */
import { env } from 'cloudflare:workers'
import fc from 'fast-check'
import { type Context, Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { onceObject, onceRoute } from '../../src/index.js'
import { leaseDeclared } from '../../src/durable/once-object-route.js'
import { MAX_RPC_BODY_BYTES } from '../../src/durable/types.js'
import type { OnceAnswer, OnceCall, OnceObjectApi } from '../../src/durable/once-object-types.js'
import { edge, effects, inside, newAccount, newKey, problemOf, recordOf, stubOf, until } from './helpers.js'

const post = (path: string, key: string | undefined, headers: Record<string, string> = {}) =>
  new Request(`http://edge${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': `"${key}"` }), ...headers },
    body: JSON.stringify({ amount: 100 }),
  })

describe('a lease route is a lease route however its path is spelled', () => {
  /** An app with lease routes (POST /calls, GET /report) beside a catch-all, telling which handler ran. */
  const appOf = (strict: boolean) =>
    new Hono({ strict })
      .post('/acct/:name/calls', onceRoute({ lease: true }), (c) => c.text('lease', 200, { 'x-route': 'lease' }))
      .get('/acct/:name/report', onceRoute({ lease: true }), (c) => c.text('lease', 200, { 'x-route': 'lease' }))
      .all('/acct/:name/:other', (c) => c.text('other', 200, { 'x-route': 'other' }))

  /** "calls" or "report" with some letters percent-encoded (either case of hex), maybe a trailing slash. */
  const spelling = fc.record({
    word: fc.constantFrom('calls', 'report'),
    encoded: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
    lowerHex: fc.boolean(),
    slash: fc.boolean(),
    method: fc.constantFrom('POST', 'GET', 'HEAD'),
    strict: fc.boolean(),
  })

  it('decides as the app routes: percent-encoded letters, a trailing slash (strict: false), HEAD running the GET route (property)', async () => {
    await fc.assert(
      fc.asyncProperty(spelling, async ({ word, encoded, lowerHex, slash, method, strict }) => {
        const hex = (ch: string) => '%' + ch.charCodeAt(0).toString(16)[lowerHex ? 'toLowerCase' : 'toUpperCase']()
        const segment = [...word].map((ch, i) => (encoded[i] ? hex(ch) : ch)).join('')
        const app = appOf(strict)
        const url = `http://object/acct/x/${segment}${slash ? '/' : ''}`
        const res = await app.fetch(new Request(url, { method }))
        const ran = res.headers.get('x-route') === 'lease'
        expect(leaseDeclared(app, () => new Request(url, { method }))).toBe(ran)
      }),
      { numRuns: 300 },
    )
  })

  it('a client that spells the lease route /%63alls still gets the lease path: its write is kept after a 503, as on /calls', async () => {
    const { app } = edge({ replayCache: false })
    const a = newAccount()
    for (const route of ['calls', '%63alls']) {
      const key = newKey()
      const res = await app.request(`/acct/${a}/${route}`, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'x-mode': 'fail', 'content-type': 'application/json' }, body: '{"amount":1}' }, env)
      expect(res.status, route).toBe(503)
      // Under a lease a handler's writes commit as they go; in a transaction a 503 would have rolled it back.
      expect(await effects(a, key), route).toBe(1)
    }
  })
})

describe('a lease route past maxRunMs', () => {
  it('is told through its request signal, so a handler that checks it stops before writing; the retry applies once', async () => {
    const { app } = edge({ replayCache: false, maxRunMs: 100 })
    const a = newAccount()
    const key = newKey()
    const first = await app.request(`/acct/${a}/slow`, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'x-sleep': '400', 'content-type': 'application/json' }, body: '{"amount":1}' }, env)
    expect(first.status).toBe(504)
    // The abandoned handler wakes up, sees its signal aborted and writes nothing.
    await until(async () => (await stubOf(a).slowRuns()) === 1)
    expect(await effects(a, key)).toBe(0)
    const retry = await app.request(`/acct/${a}/slow`, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{"amount":1}' }, env)
    expect(retry.status).toBe(201)
    expect(await effects(a, key)).toBe(1)
  })
})

describe('Once-Request-Id is the object word, never the client', () => {
  it('a forged header is removed from keyless requests and replaced on keyed ones', async () => {
    const { send } = edge({ required: false, replayCache: false })
    const a = newAccount()
    const keyless = await send(a, undefined, { headers: { 'once-request-id': 'forged-by-client' } })
    expect(keyless.status).toBe(201)
    expect(((await keyless.json()) as { requestId: string | null }).requestId).toBeNull()
    const key = newKey()
    const keyed = await send(a, key, { headers: { 'once-request-id': 'forged-by-client' } })
    const id = ((await keyed.json()) as { requestId: string }).requestId
    expect(id).not.toBe('forged-by-client')
    expect(id).toBe((await recordOf(a, key))?.requestId)
    // The object's own fetch() (the app without records) drops it too.
    const direct = await stubOf(a).fetch(new Request(`http://object/acct/${a}/deposits`, { method: 'POST', headers: { 'once-request-id': 'forged-by-client' }, body: '{"amount":1}' }))
    expect(((await direct.json()) as { requestId: string | null }).requestId).toBeNull()
  })
})

describe('a request without a key is sent to the object once', () => {
  /** A stand-in object that applies the request, then loses the connection (the runtime flags that retryable). */
  const flaky = () => {
    let applied = 0
    const lose = (): Promise<OnceAnswer> => {
      applied++
      return Promise.reject(Object.assign(new Error('Network connection lost.'), { retryable: true }))
    }
    const stub: OnceObjectApi = { once: (_call: OnceCall) => lose(), onceCall: () => lose() }
    return { stub, applied: () => applied }
  }

  it('a keyless POST is not sent again after a retryable error; its 503 says it may have taken effect', async () => {
    const { stub, applied } = flaky()
    const app = new Hono().post('/x', onceObject(() => stub as never, { required: false }))
    const res = await app.request('/x', { method: 'POST', body: '{"amount":1}' })
    expect(res.status).toBe(503)
    expect(applied()).toBe(1)
    const body = await problemOf(res)
    expect(body).not.toHaveProperty('idempotency_key')
    expect(String(body.detail)).toMatch(/no Idempotency-Key: it may have taken effect/)
  })

  it('a keyless GET is sent once more (a GET is safe to repeat); its 503 carries no key', async () => {
    const { stub, applied } = flaky()
    const app = new Hono().get('/x', onceObject(() => stub as never))
    const res = await app.request('/x')
    expect(res.status).toBe(503)
    expect(applied()).toBe(2)
    expect(await problemOf(res)).not.toHaveProperty('idempotency_key')
  })

  it('a keyed POST is sent once more through a fresh stub (its key makes a second delivery safe)', async () => {
    const { stub, applied } = flaky()
    const app = new Hono().post('/x', onceObject(() => stub as never))
    const res = await app.request('/x', { method: 'POST', headers: { 'idempotency-key': '"k-1"' }, body: '{"amount":1}' })
    expect(res.status).toBe(503)
    expect(applied()).toBe(2)
    expect((await problemOf(res)).idempotency_key).toBe('k-1')
  })
})

describe('a GET among `methods`', () => {
  it('is recorded and replayed like once() does, not run without a record', async () => {
    const a = newAccount()
    const key = newKey()
    const app = new Hono<{ Bindings: Cloudflare.Env }>()
    app.all('/acct/:name/*', onceObject((c: Context) => stubOf(c.req.param('name') ?? ''), { methods: ['GET', 'POST'], replayCache: false }))
    expect((await app.request(`/acct/${a}/balance`, {}, env)).status).toBe(400)
    const first = await app.request(`/acct/${a}/balance`, { headers: { 'idempotency-key': `"${key}"` } }, env)
    expect(first.status).toBe(200)
    expect(await recordOf(a, key)).toMatchObject({ state: 'committed', status: 200 })
    const again = await app.request(`/acct/${a}/balance`, { headers: { 'idempotency-key': `"${key}"` } }, env)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await again.text()).toBe(await first.text())
  })
})

describe('sizes one RPC cannot carry', () => {
  it('maxBodyBytes over what one RPC carries is refused at start-up, naming the option', () => {
    expect(() => onceObject(() => stubOf('x'), { maxBodyBytes: MAX_RPC_BODY_BYTES + 1 })).toThrow(/maxBodyBytes: at most 33292288/)
    expect(() => onceObject(() => stubOf('x'), { maxBodyBytes: MAX_RPC_BODY_BYTES })).not.toThrow()
  })

  it('a 28 MiB reply still travels (keyed, and keyless); one over the RPC limit is applied once and answered reply-lost, not a 503 to retry', async () => {
    const { send } = edge({ replayCache: false, required: false })
    const a = newAccount()
    const big = String(28 * 1024 * 1024)
    const keyed = await send(a, newKey(), { headers: { 'x-reply-bytes': big } })
    expect(keyed.status).toBe(201)
    expect((await keyed.arrayBuffer()).byteLength).toBeGreaterThan(28 * 1024 * 1024)
    const keyless = await send(a, undefined, { headers: { 'x-reply-bytes': big } })
    expect(keyless.status).toBe(201)
    const key = newKey()
    const tooBig = String(32 * 1024 * 1024)
    const first = await send(a, key, { headers: { 'x-reply-bytes': tooBig } })
    expect(first.status).toBe(500)
    const problem = await problemOf(first)
    expect(problem.type).toMatch(/reply-lost$/)
    expect(String(problem.detail)).toMatch(/took effect with status 201.*larger than one call from the object can carry/)
    expect(await effects(a, key)).toBe(1)
    const again = await send(a, key, { headers: { 'x-reply-bytes': tooBig } })
    expect(again.status).toBe(500)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await effects(a, key)).toBe(1)
    // Without a key nothing records the request: its problem says so, and no "will not run again".
    const unrecorded = await problemOf(await send(a, undefined, { headers: { 'x-reply-bytes': tooBig } }))
    expect(String(unrecorded.detail)).toMatch(/ran with status 201.*Nothing records it/)
  })

  it('method-call arguments over the RPC limit are a 413, not a 503 to retry for ever; nothing applied', async () => {
    const a = newAccount()
    const key = newKey()
    const app = new Hono<{ Bindings: Cloudflare.Env }>()
    app.post(
      '/acct/:name/deposits',
      onceObject((c: Context) => stubOf(c.req.param('name') ?? ''), { call: () => ({ method: 'depositCall', args: [1, `"${key}"`, undefined, 0, 'x'.repeat(33 * 1024 * 1024)], status: 201 }) }),
    )
    const res = await app.fetch(post(`/acct/${a}/deposits`, key), env)
    expect(res.status).toBe(413)
    expect((await problemOf(res)).type).toMatch(/body-too-large$/)
    expect(await effects(a, key)).toBe(0)
  })
})

describe('a method call that calls a keyed method of its own object', () => {
  it('keeps its own onceRequestId after the inner call returns', async () => {
    const a = newAccount()
    const key = newKey()
    const reenter = new Hono<{ Bindings: Cloudflare.Env }>()
    reenter.post('/acct/:name/deposits', onceObject((c: Context) => stubOf(c.req.param('name') ?? ''), { call: () => ({ method: 'reenter', args: [`inner-${key}`] }) }))
    const res = await reenter.fetch(post(`/acct/${a}/deposits`, key), env)
    expect(res.status).toBe(200)
    const seen = (await res.json()) as { before: string | null; after: string | null }
    expect(seen.before).toBe((await recordOf(a, key))?.requestId)
    expect(seen.after).toBe(seen.before)
    expect(await stubOf(a).effects(`inner-${key}`)).toBe(1)
  })
})

describe('records tables of an earlier release', () => {
  it('a table without manual_encoding gets the column when the object starts; its records replay, new keys commit', async () => {
    const { send } = edge({ replayCache: false })
    const a = newAccount()
    const key = newKey()
    const first = await send(a, key)
    expect(first.status).toBe(201)
    await inside(a, (sql) => void sql.exec('ALTER TABLE once_records DROP COLUMN manual_encoding'))
    await stubOf(a).restart().catch(() => {})
    const again = await send(a, key)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await again.text()).toBe(await first.text())
    expect((await send(a, newKey())).status).toBe(201)
    expect(await inside(a, (sql) => sql.exec('SELECT count(*) AS n FROM once_records WHERE manual_encoding = 0').one().n)).toBe(2)
  })
})
