// Review s32 (last). 886c158: once()'s secret check before the admit asks the object `inspect(lookup)` and refuses
// with 500 misconfigured ("nothing ran", retryable: false) when `!known || known.expiresAt <= Date.now()`
// (src/middleware/admit.ts:124). But a record the object still holds can be past its expires_at and still be alive:
// an admitted ordered request lives until its commit whatever its TTL (records.ts isLive: in_flight with a sequence),
// and a running one lives under its lease. inspect() returns such a record (it filters with isLive), and the Worker
// then throws it away by its expiresAt: a retry of a request that is in the log, or running right now, is told
// "nothing ran, do not retry".
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { depositUnder } from './signing-secret.js'
import { list, restoreFetch, wrapFetch } from '../origin-adapter/domains.js'

afterEach(restoreFetch)

const secret = { env: 'TEST_SIGNING_SECRET' }

describe('a retry while the signing secret is unset, of a key whose live record is past its TTL', () => {
  it('an ordered write pending in its domain log past ttlSeconds is not told misconfigured ("nothing ran")', async () => {
    const origins = await startOrigins(['eu', 'us'])
    // The replicas refuse every write of this test (503): the write stays pending in its domain's log.
    wrapFetch(list(origins).map((o) => o.url), async (request, send) => (request.headers.get('x-note') === 'down' ? new Response('busy', { status: 503 }) : send()))
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 3000, ttlSeconds: 1, replayCache: false, domain: (c) => c.req.path.split('/')[2]! }))
    app.post('/accounts/*', proxy({ origins: list(origins), strategy: 'replicate', secret, maxAttempts: 1, timeoutMs: 500, deadlineMs: 800 }))
    const key = newKey()
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const send = (withSecret: boolean) =>
      app.request(
        `/accounts/${account}/deposits`,
        { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json', 'x-note': 'down' }, body: '{"amount":5}' },
        { ONCE: env.ONCE, ...(withSecret ? { TEST_SIGNING_SECRET: env.TEST_SIGNING_SECRET } : {}) },
      )
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      expect((await send(true)).status).toBe(502)
      // Past the record's expires_at (1 s): the ordered record is still in flight, its slot in the log.
      await scheduler.wait(1300)
      const retry = await send(false)
      const body = (await retry.json()) as { type: string; retryable: boolean }
      expect({ type: body.type, retryable: body.retryable }, JSON.stringify(body)).not.toMatchObject({ type: "https://hono-once.dev/problems/misconfigured" })
      expect(body.retryable, JSON.stringify(body)).toBe(true)
    } finally {
      warn.mockRestore()
      error.mockRestore()
    }
  })

  it('an unordered write still running under its lease past ttlSeconds is answered as in flight (or replayed), not misconfigured', async () => {
    const [eu] = await startOrigins(['eu'])
    // The origin takes 1.5 s: longer than the key's TTL (1 s), shorter than the lease (5 s, renewed).
    wrapFetch([eu!.url], async (_request, send) => {
      await scheduler.wait(1500)
      return send()
    })
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 5000, ttlSeconds: 1, inFlight: 'reject', replayCache: false }))
    app.post('/accounts/*', proxy({ origins: list([eu!]), strategy: 'failover', secret, maxAttempts: 1, timeoutMs: 4000, deadlineMs: 4000 }))
    const key = newKey()
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const send = depositUnder(app, account, key)
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const first = send(true)
      await scheduler.wait(1200)
      const retry = await send(false)
      const body = (await retry.json()) as { type: string; retryable: boolean }
      expect((await first).status).toBe(201)
      expect((await eu!.stats()).balances[account]).toBe(5)
      // The first attempt was sent and is applying: "in flight, retry with the same key", never "nothing ran".
      expect({ status: retry.status, type: body.type, retryable: body.retryable }, JSON.stringify(body)).toMatchObject({ status: 409, type: 'https://hono-once.dev/problems/in-flight', retryable: true })
    } finally {
      error.mockRestore()
    }
  })
})
