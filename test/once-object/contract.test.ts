/**
 * once()'s contract (DESIGN §3, §7), against an `OnceObject` account behind
 * `onceObject()`: keys, replay byte for byte, 422, what is final, in-flight
 * duplicates, TTL and restart. Effects are counted in the object's own ledger.
 */
import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { onceObject, PROBLEM_BASE } from '../../src/index.js'
import { edge, effects, inside, newAccount, newKey, problemOf, recordOf, stubOf, until } from './helpers.js'

describe('identity: the Idempotency-Key header', () => {
  it('answers 400 problem+json when the key is missing, and runs nothing', async () => {
    const { send } = edge()
    const a = newAccount()
    const res = await send(a, undefined)
    expect(res.status).toBe(400)
    expect(await problemOf(res)).toMatchObject({ type: `${PROBLEM_BASE}key-missing`, status: 400, retryable: false })
    expect(await stubOf(a).balance()).toBe(0)
  })

  it.each([
    ['empty sf-string', '""', /empty/],
    ['longer than 255', `"${'a'.repeat(256)}"`, /longer than 255/],
    ['unterminated sf-string', '"abc', /structured-field string/],
    ['non-ASCII', '"clé"', /structured-field string/],
  ])('answers 400 for a %s key', async (_name, header, detail) => {
    const { app } = edge()
    const a = newAccount()
    const res = await app.request(`/acct/${a}/deposits`, { method: 'POST', headers: { 'idempotency-key': header }, body: '{"amount":1}' }, env)
    expect(res.status).toBe(400)
    expect((await problemOf(res)).detail).toMatch(detail)
    expect(await stubOf(a).balance()).toBe(0)
  })

  it('answers 413 for a body over maxBodyBytes', async () => {
    const { send } = edge({ maxBodyBytes: 64 })
    const a = newAccount()
    const res = await send(a, newKey(), { body: { amount: 1, pad: 'x'.repeat(200) } })
    expect(res.status).toBe(413)
    expect((await problemOf(res)).type).toBe(`${PROBLEM_BASE}body-too-large`)
  })

  it('limits the body of a request without a key too (required: false)', async () => {
    const { send } = edge({ required: false, maxBodyBytes: 64 })
    const a = newAccount()
    expect((await send(a, undefined, { body: { amount: 1, pad: 'x'.repeat(200) } })).status).toBe(413)
    expect(await stubOf(a).balance()).toBe(0)
  })

  it('passes requests without a key when required is false, and safe methods always, without records', async () => {
    const { send, app } = edge({ required: false })
    const a = newAccount()
    expect((await send(a, undefined)).status).toBe(201)
    expect((await send(a, undefined)).status).toBe(201)
    const balance = await app.request(`/acct/${a}/balance`, {}, env)
    expect(await balance.json()).toEqual({ balance: 200 })
    expect(await inside(a, (sql) => sql.exec('SELECT count(*) AS n FROM once_records').one().n)).toBe(0)
  })
})

describe('replay', () => {
  it.each([
    ['the isolate cache', undefined],
    ['the object', false as const],
  ])('replays status, body and allowed headers byte for byte from %s', async (_name, replayCache) => {
    const { send } = edge({ replayCache })
    const a = newAccount()
    const k = newKey()
    const first = await send(a, k)
    const body = await first.text()
    expect(first.status).toBe(201)
    expect(first.headers.get('set-cookie')).toBe('session=abc')
    expect(first.headers.get('idempotent-replayed')).toBeNull()
    for (let i = 0; i < 3; i++) {
      const again = await send(a, k)
      expect(again.status).toBe(201)
      expect(await again.text()).toBe(body)
      expect(again.headers.get('x-ledger')).toBe('main')
      expect(again.headers.get('content-type')).toBe(first.headers.get('content-type'))
      expect(again.headers.get('set-cookie')).toBeNull()
      expect(again.headers.get('idempotent-replayed')).toBe('true')
    }
    expect(await effects(a, k)).toBe(1)
  })

  it('replays only the listed headers with replayHeaders, Set-Cookie included if listed', async () => {
    const { send } = edge({ replayHeaders: ['content-type', 'set-cookie'], replayCache: false })
    const a = newAccount()
    const k = newKey()
    await send(a, k)
    const again = await send(a, k)
    expect(again.headers.get('set-cookie')).toBe('session=abc')
    expect(again.headers.get('x-ledger')).toBeNull()
  })

  it('concurrent duplicates: one effect, one fresh answer, every other a replay of it', async () => {
    const { send } = edge({ replayCache: false })
    const a = newAccount()
    const k = newKey()
    const all = await Promise.all(Array.from({ length: 12 }, () => send(a, k)))
    const bodies = new Set(await Promise.all(all.map((r) => r.text())))
    expect(all.map((r) => r.status)).toEqual(Array(12).fill(201))
    expect(bodies.size).toBe(1)
    expect(all.filter((r) => r.headers.get('idempotent-replayed') === null)).toHaveLength(1)
    expect(await effects(a, k)).toBe(1)
  })

  it('stores a reply over one SQLite row in chunks and replays it whole', async () => {
    const { send } = edge({ replayCache: false })
    const a = newAccount()
    const k = newKey()
    const headers = { 'x-reply-bytes': String(2.5 * 1024 * 1024) }
    const first = await send(a, k, { headers })
    expect(first.status).toBe(201)
    const text = await first.text()
    expect(await inside(a, (sql) => sql.exec('SELECT count(*) AS n FROM once_reply_chunks').one().n)).toBe(3)
    const again = await send(a, k, { headers })
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await again.text()).toBe(text)
    expect(await effects(a, k)).toBe(1)
  })

  it('never runs again when a reply is over maxReplyBytes; duplicates get reply-lost', async () => {
    const { send } = edge({ maxReplyBytes: 10, replayCache: false })
    const a = newAccount()
    const k = newKey()
    expect((await send(a, k)).status).toBe(201)
    const again = await send(a, k)
    expect(again.status).toBe(500)
    const p = await problemOf(again)
    expect(p.type).toBe(`${PROBLEM_BASE}reply-lost`)
    expect(p.detail).toMatch(/status 201.*maxReplyBytes/)
    expect(await effects(a, k)).toBe(1)
  })
})

describe('fingerprint and scope', () => {
  it('answers 422 when a key is reused with another body, from the object and from the cache', async () => {
    for (const replayCache of [false, undefined] as const) {
      const { send } = edge({ replayCache })
      const a = newAccount()
      const k = newKey()
      await send(a, k, { body: { amount: 1 } })
      const res = await send(a, k, { body: { amount: 2 } })
      expect(res.status).toBe(422)
      expect(await problemOf(res)).toMatchObject({ type: `${PROBLEM_BASE}key-reused`, idempotency_key: k, retryable: false })
      expect(await effects(a, k)).toBe(1)
    }
  })

  it('answers 422 after a failed attempt too: the released record keeps its fingerprint', async () => {
    const { send } = edge()
    const a = newAccount()
    const k = newKey()
    expect((await send(a, k, { mode: 'fail' })).status).toBe(503)
    expect((await send(a, k, { body: { amount: 7 } })).status).toBe(422)
  })

  it('keeps tenants apart: one key under two Authorization headers runs twice', async () => {
    const { send } = edge({ replayCache: false })
    const a = newAccount()
    const k = newKey()
    expect((await send(a, k, { headers: { authorization: 'Bearer alice' } })).status).toBe(201)
    const bob = await send(a, k, { body: { amount: 5 }, headers: { authorization: 'Bearer bob' } })
    expect(bob.status).toBe(201)
    expect(bob.headers.get('idempotent-replayed')).toBeNull()
    expect(await effects(a, k)).toBe(2)
  })

  it('a key is unique within its object: two accounts, one key, two effects', async () => {
    const { send } = edge()
    const k = newKey()
    const [a, b] = [newAccount(), newAccount()]
    expect((await send(a, k)).status).toBe(201)
    expect((await send(b, k)).status).toBe(201)
    expect((await effects(a, k)) + (await effects(b, k))).toBe(2)
  })
})

describe('what is final: effects commit with the record, or roll back', () => {
  it.each([
    ['a 5xx answer', 'fail', 503],
    ['a thrown error', 'throw', 500],
  ] as const)('rolls the effect back after %s, and a retry runs again once', async (_name, mode, status) => {
    const { send } = edge()
    const a = newAccount()
    const k = newKey()
    const failed = await send(a, k, { mode })
    expect(failed.status).toBe(status)
    // The handler wrote its ledger row before failing: the row went with the transaction.
    expect(await effects(a, k)).toBe(0)
    expect(await recordOf(a, k)).toMatchObject({ state: 'released', attempt: 1 })
    const retry = await send(a, k)
    expect(retry.status).toBe(201)
    expect(retry.headers.get('idempotent-replayed')).toBeNull()
    expect(await effects(a, k)).toBe(1)
    // The retry is the same logical request: same request id, next attempt.
    expect(await recordOf(a, k)).toMatchObject({ state: 'committed', attempt: 2, requestId: (await recordOf(a, k))?.requestId })
  })

  it('commits a final 4xx and replays it', async () => {
    const { send } = edge()
    const a = newAccount()
    const k = newKey()
    expect((await send(a, k, { mode: 'bad-request' })).status).toBe(400)
    const again = await send(a, k, { mode: 'ok' })
    expect(again.status).toBe(400)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await effects(a, k)).toBe(0)
  })

  it("gives the app the original method, path and headers, and the request's stable id", async () => {
    const { send } = edge()
    const a = newAccount()
    const k = newKey()
    const body = (await (await send(a, k)).json()) as { key: string; requestId: string }
    expect(body.key).toBe(`"${k}"`)
    expect(body.requestId).toBe((await recordOf(a, k))?.requestId)
  })
})

describe('lease routes (handlers that call out)', () => {
  it.each(['calls', 'sub/calls'] as const)('in reject mode, a duplicate of a running request (/%s) gets 409 with Retry-After, then the replay', async (route) => {
    const { send } = edge({ inFlight: 'reject' })
    const a = newAccount()
    const k = newKey()
    await stubOf(a).hold(`"${k}"`)
    const first = send(a, k, { route })
    await until(async () => (await recordOf(a, k))?.state === 'in_flight')
    const dup = await send(a, k, { route })
    expect(dup.status).toBe(409)
    expect(dup.headers.get('retry-after')).toBe('1')
    expect(await problemOf(dup)).toMatchObject({ type: `${PROBLEM_BASE}in-flight`, retryable: true })
    await stubOf(a).open(`"${k}"`)
    expect((await first).status).toBe(201)
    expect((await send(a, k, { route })).headers.get('idempotent-replayed')).toBe('true')
    expect(await effects(a, k)).toBe(1)
  })

  it('in wait mode, duplicates wait in the object and get the reply; past waitMs they get 409', async () => {
    const { send } = edge({ waitMs: 5000 })
    const a = newAccount()
    const k = newKey()
    await stubOf(a).hold(`"${k}"`)
    const first = send(a, k, { route: 'calls' })
    await until(async () => (await recordOf(a, k))?.state === 'in_flight')
    const waiting = Promise.all([send(a, k, { route: 'calls' }), send(a, k, { route: 'calls' })])
    const short = await edge({ waitMs: 50 }).send(a, k, { route: 'calls' })
    expect(short.status).toBe(409)
    await stubOf(a).open(`"${k}"`)
    const firstBody = await (await first).text()
    for (const dup of await waiting) {
      expect(dup.status).toBe(201)
      expect(await dup.text()).toBe(firstBody)
    }
    expect(await effects(a, k)).toBe(1)
  })

  it('past maxRunMs the key is released with a retryable 504, and a retry runs again', async () => {
    const { send } = edge({ maxRunMs: 100 })
    const a = newAccount()
    const k = newKey()
    await stubOf(a).hold(`"${k}"`)
    const res = await send(a, k, { route: 'calls' })
    expect(res.status).toBe(504)
    expect(await problemOf(res)).toMatchObject({ type: `${PROBLEM_BASE}handler-timeout`, retryable: true })
    await stubOf(a).open(`"${k}"`) // the abandoned handler now applies its effect, but may not commit
    const retry = await send(a, k, { route: 'calls' })
    expect(retry.status).toBe(201)
    expect(await recordOf(a, k)).toMatchObject({ state: 'committed', attempt: 2 })
  })
})

describe('expiry and restart', () => {
  it('an expired record counts as gone at once (a new request runs), and a sweep deletes it', async () => {
    const { send } = edge({ replayCache: false })
    const a = newAccount()
    const k = newKey()
    await send(a, k)
    const old = await recordOf(a, k)
    await inside(a, (sql) => sql.exec('UPDATE once_records SET expires_at = ?', Date.now() - 1))
    expect(await recordOf(a, k)).toBeNull()
    const again = await send(a, k, { body: { amount: 3 } }) // another body: not 422, the old record is dead
    expect(again.status).toBe(201)
    expect((await recordOf(a, k))?.requestId).not.toBe(old?.requestId)
    expect(await effects(a, k)).toBe(2)
    // Sweeps run during requests, at most once a second and a few rows at a time.
    const other = newKey()
    await send(a, other)
    await inside(a, (sql) => sql.exec('UPDATE once_records SET expires_at = ? WHERE lookup LIKE ?', Date.now() - 1, `%${other}`))
    await until(async () => {
      await send(a, newKey())
      return (await inside(a, (sql) => sql.exec('SELECT count(*) AS n FROM once_records WHERE lookup LIKE ?', `%${other}`).one().n)) === 0
    })
  })

  it('ttlSeconds sets the expiry of the record', async () => {
    const { send } = edge({ ttlSeconds: 60 })
    const a = newAccount()
    const k = newKey()
    const before = Date.now()
    await send(a, k)
    const { expiresAt } = (await recordOf(a, k))!
    expect(expiresAt).toBeGreaterThanOrEqual(before + 60_000)
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 60_000)
  })

  it('keeps committed records across a restart of the object, and its alarm stays free', async () => {
    const { send } = edge({ replayCache: false })
    const a = newAccount()
    const k = newKey()
    const body = await (await send(a, k)).text()
    await stubOf(a).restart().catch(() => {})
    const again = await send(a, k)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await again.text()).toBe(body)
    expect(await inside(a, (_sql, _obj, state) => state.storage.getAlarm())).toBeNull()
  })

  it('a lease route left in flight by a dead instance is taken over at once by the retry', async () => {
    const { send } = edge({ inFlight: 'reject' })
    const a = newAccount()
    const k = newKey()
    await stubOf(a).hold(`"${k}"`)
    const first = send(a, k, { route: 'calls' })
    await until(async () => (await recordOf(a, k))?.state === 'in_flight')
    await stubOf(a).restart().catch(() => {})
    await first.catch(() => {})
    const retry = await send(a, k, { route: 'calls' })
    expect(retry.status).toBe(201)
    expect(await recordOf(a, k)).toMatchObject({ state: 'committed', attempt: 2 })
    expect(await effects(a, k)).toBe(1)
  })
})

describe('configuration', () => {
  it('refuses bad and foreign options at start-up, naming them', () => {
    const stub = () => env.ONCE_ACCOUNT.get(env.ONCE_ACCOUNT.idFromName('x'))
    expect(() => onceObject(stub, { ttlSeconds: -1 })).toThrow(/onceObject\(\).*ttlSeconds/)
    expect(() => onceObject(stub, { shards: 2 } as never)).toThrow(/shards/)
    expect(() => onceObject(stub, { domain: () => 'd' } as never)).toThrow(/domain/)
    expect(() => onceObject('nope' as never)).toThrow(/stubOf/)
  })

  it('answers 500 misconfigured when stubOf throws, or the object is not an OnceObject', async () => {
    const app = new Hono<{ Bindings: Cloudflare.Env }>()
    app.post('/throws', onceObject(() => {
      throw new Error('no such account')
    }))
    app.post('/wrong', onceObject(() => env.ACCOUNTS.get(env.ACCOUNTS.idFromName('x')) as never))
    for (const path of ['/throws', '/wrong']) {
      const res = await app.request(path, { method: 'POST', headers: { 'idempotency-key': newKey() }, body: '{}' }, env)
      expect(res.status).toBe(500)
      expect(await problemOf(res)).toMatchObject({ type: `${PROBLEM_BASE}misconfigured`, retryable: false })
    }
  })

  it('answers 500 misconfigured naming the class when the OnceObject has no app (JavaScript, a silenced type error), every time, and writes no record', async () => {
    const a = newAccount()
    const { send } = edge()
    const hidden = await runInDurableObject(stubOf(a), (object: { app: unknown }) => {
      const app = object.app
      object.app = undefined
      return app
    })
    try {
      const k = newKey()
      // The retry too: nothing was written that would answer it otherwise.
      for (const key of [k, k]) {
        const res = await send(a, key)
        expect(res.status).toBe(500)
        expect(await problemOf(res)).toMatchObject({ type: `${PROBLEM_BASE}misconfigured`, retryable: false, detail: expect.stringMatching(/^OnceAccount has no app: give the OnceObject subclass a Hono app/) })
      }
      expect(await recordOf(a, k)).toBeNull()
    } finally {
      await runInDurableObject(stubOf(a), (object: { app: unknown }) => void (object.app = hidden))
    }
  })
})
