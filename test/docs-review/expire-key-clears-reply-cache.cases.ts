/**
 * Review s31 (docs) F4: testing.md says expireKey(env.ONCE, key) moves the record past its TTL, and once.md that the
 * key is new again after it; yet a retry through the same once() was replayed from the isolate's reply cache, which
 * kept its own copy (a real expiry ends both). expireKey() now drops the key from every reply cache of the isolate.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once } from '../../src/index.js'
import { expireKey } from '../../src/testing.js'
import { lookupKey } from '../../src/middleware/identity.js'
import { forgetEverywhere, ReplyCache } from '../../src/middleware/reply-cache.js'
import { newKey } from '../helpers.js'

const post = (app: Hono, path: string, key: string, body = '{}') =>
  app.request(path, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body }, env)

describe('expireKey() ends the cached copy of the key too, as a real TTL does', () => {
  it('after expireKey, a retry through the same once() (reply cache on) runs the handler again', async () => {
    let runs = 0
    const app = new Hono().post('/t', once(), (c) => (runs++, c.text('ok', 201)))
    const key = newKey()
    await post(app, '/t', key)
    const replayed = await post(app, '/t', key)
    expect(replayed.headers.get('idempotent-replayed')).toBe('true') // the cache holds it now
    expect(await expireKey(env.ONCE, key)).toBe(true)
    const again = await post(app, '/t', key)
    expect({ replayed: again.headers.get('idempotent-replayed'), runs }).toEqual({ replayed: null, runs: 2 })
  })

  it("leaves another key's cached reply alone", async () => {
    let runs = 0
    const app = new Hono().post('/t', once(), (c) => (runs++, c.text('ok', 201)))
    const [key, other] = [newKey(), newKey()]
    await post(app, '/t', key)
    await post(app, '/t', other)
    await expireKey(env.ONCE, key)
    const kept = await post(app, '/t', other)
    expect({ replayed: kept.headers.get('idempotent-replayed'), runs }).toEqual({ replayed: 'true', runs: 2 })
  })

  it('forgetEverywhere drops only the entries of that lookup, in every cache', () => {
    const reply = { status: 201, headers: [] as [string, string][], body: new Uint8Array() }
    const entry = { fingerprint: 'f', requestId: 'r', reply, expiresAt: Date.now() + 60_000 }
    const [a, b] = [new ReplyCache(), new ReplyCache()]
    // A key of its own: the caches of the other test files in this runtime are "everywhere" too.
    const key = `dep-${crypto.randomUUID()}`
    const lookup = lookupKey('', key)
    a.set(lookup, entry)
    a.set(`${lookup}\nacct-1`, entry)
    b.set(`object-id\n${lookup}`, entry)
    a.set(lookupKey('', `${key}0`), entry)
    b.set(lookupKey('tenant', key), entry)
    expect(forgetEverywhere(lookup)).toBe(3)
    expect([a.size, b.size]).toEqual([1, 1])
  })
})
