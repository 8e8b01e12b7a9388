import { env } from 'cloudflare:workers'
import { evictDurableObject, runInDurableObject } from 'cloudflare:test'
import { Hono } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import { once, PROBLEM_BASE } from '../../src/index.js'
import { SCHEMA_VERSION } from '../../src/durable/schema.js'
import type { StableArea } from '../../src/durable/stable-area.js'
import { bank, newKey, problemOf, stubFor } from '../helpers.js'

describe('a user function that throws (issue 7.9)', () => {
  it.each([
    ['namespace', { namespace: () => { throw new Error('no binding here') } }],
    ['scope', { scope: () => { throw new Error('session store down') } }],
    ['scope', { scope: () => Promise.reject(new Error('session store down')) }],
    ['fingerprint', { fingerprint: () => { throw new Error('bad body') } }],
  ] as const)('answers 500 problem+json misconfigured naming the %s option, and runs nothing', async (option, options) => {
    const { post, effects } = bank(options)
    const res = await post(newKey())
    expect(res.status).toBe(500)
    const p = await problemOf(res)
    expect(p).toMatchObject({ type: `${PROBLEM_BASE}misconfigured`, retryable: false })
    expect(p.detail).toContain(`The ${option} option threw`)
    expect(effects.size).toBe(0)
  })

  it("keeps the error's text out of the answer (it goes to the log): a connection string in it is no one's to read", async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { post } = bank({ scope: () => { throw new Error('session lookup failed: redis://default:S3cret-Redis-Pass@cache.internal:6379') } })
    const res = await post(newKey())
    const logged = error.mock.calls.flat().map(String).join(' ')
    error.mockRestore()
    expect(res.status).toBe(500)
    const text = await res.text()
    expect(text).not.toContain('S3cret')
    expect(text).not.toContain('redis://')
    expect(logged).toContain('S3cret-Redis-Pass')
  })
})

describe('a binding that is not a usable StableArea (issue 7.10)', () => {
  it('answers a non-retryable 500 when ONCE is bound to another Durable Object class', async () => {
    const { post, effects } = bank({ namespace: () => env.ACCOUNTS as unknown as typeof env.ONCE })
    const res = await post(newKey())
    expect(res.status).toBe(500)
    expect(res.headers.get('retry-after')).toBeNull()
    const p = await problemOf(res)
    expect(p).toMatchObject({ type: `${PROBLEM_BASE}misconfigured`, retryable: false })
    expect(p.detail).toMatch(/StableArea/)
    expect(effects.size).toBe(0)
  })

  it('answers a non-retryable 500 naming new_sqlite_classes when StableArea has no SQLite storage', async () => {
    const { post, effects } = bank({ namespace: () => env.ONCE_KV })
    const res = await post(newKey())
    expect(res.status).toBe(500)
    const p = await problemOf(res)
    expect(p).toMatchObject({ type: `${PROBLEM_BASE}misconfigured`, retryable: false })
    expect(p.detail).toMatch(/new_sqlite_classes/)
    expect(effects.size).toBe(0)
  })
})

describe('an overloaded stable area (issue 11.7)', () => {
  it('answers 503 with a long, jittered Retry-After instead of sending every client back a second later', async () => {
    const overloaded = Object.assign(new Error('Durable Object is overloaded. Too many requests queued.'), { overloaded: true, retryable: false })
    const ns = {
      idFromName: (name: string) => env.ONCE.idFromName(name),
      get: () => ({ admit: () => Promise.reject(overloaded) }),
    } as unknown as typeof env.ONCE
    const app = new Hono().post('/x', once({ namespace: () => ns }), (c) => c.text('never'))
    const seen = new Set<string>()
    for (let i = 0; i < 20; i++) {
      const res = await app.request('/x', { method: 'POST', headers: { 'idempotency-key': newKey() } }, env)
      expect(res.status).toBe(503)
      expect(await problemOf(res)).toMatchObject({ retryable: true })
      const after = Number(res.headers.get('retry-after'))
      expect(after).toBeGreaterThanOrEqual(5)
      // Within hono-once/client's default maxDelayMs (10 s): the client waits it out instead of giving up.
      expect(after).toBeLessThanOrEqual(10)
      seen.add(String(after))
    }
    expect(seen.size).toBeGreaterThan(1)
  })
})

describe('option errors name the path (issue 7.11)', () => {
  it.each([
    [{ fingerprint: { extra: 1 } }, /fingerprint\.extra/],
    [{ replayCache: { size: 1 } }, /replayCache\.size/],
    [{ replayCache: { maxEntries: 0 } }, /replayCache\.maxEntries/],
    [{ leaseMs: 200 }, /leaseMs: expected a number >= 1000/],
    [{ maxRunMs: 'long' }, /maxRunMs/],
    [{ locationHint: 'mars' }, /locationHint/],
  ])('%j', (options, message) => {
    expect(() => once(options as never)).toThrow(message)
  })
})

describe('a StableArea whose storage is at a newer schema than the code (a rollback after a deploy)', () => {
  it('answers a non-retryable 500 that says so, not a 503 clients retry for ever', async () => {
    const { post, effects } = bank()
    const key = newKey()
    const stub = await stubFor(key)
    const setVersion = (v: number) => runInDurableObject(stub, (_o: StableArea, s) => void s.storage.sql.exec("UPDATE meta SET v = ? WHERE k = 'schema_version'", v))
    await setVersion(SCHEMA_VERSION + 1)
    await evictDurableObject(stub)
    try {
      const res = await post(key)
      expect(res.status).toBe(500)
      const p = await problemOf(res)
      expect(p).toMatchObject({ type: `${PROBLEM_BASE}misconfigured`, retryable: false })
      expect(p.detail).toMatch(/schema version \d+, newer than this code/)
      expect(effects.size).toBe(0)
    } finally {
      await setVersion(SCHEMA_VERSION)
      await evictDurableObject(stub)
    }
    expect((await post(key)).status).toBe(201) // the newer code deployed: the same key runs
  })
})
