/**
 * The client against once() where an answer is final, where a retry needs
 * the key again later, and where the caller's code or options are odd
 * (review s28): the server's word about an answer wins over its status,
 * the key is read as the server reads it, and no stall or hook loses the call.
 */
import { env, exports } from 'cloudflare:workers'
import fc from 'fast-check'
import { Hono } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { createOnceFetch, headerOfKey, onceFetch, onceInfo, OnceFetchError, RetryBudget } from '../../src/client/index.js'
import { keyOfHeader } from '../../src/client/key.js'
import { parseIdempotencyKey } from '../../src/middleware/key.js'
import { startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'

/** A host of its own per test: the default retry budget is shared per host across the process. */
const freshHost = () => `final-${crypto.randomUUID()}.test`

/** Settles within ms or answers 'still pending' (so a hang fails the assertion, not the test's timeout). */
const within = <T,>(p: Promise<T>, ms: number): Promise<T | 'still pending'> =>
  Promise.race([p, new Promise<'still pending'>((r) => setTimeout(() => r('still pending'), ms))])

/** A transport whose connection drops after the app handled the request: the call ends in OnceFetchError. */
const lostAfter = (app: Hono) => async (r: Request) => {
  await (await app.fetch(r, env)).body?.cancel()
  throw new TypeError('Network connection lost.')
}

describe('an answer the server calls final is not asked for again', () => {
  it('a 500 reply-lost (applied, its answer too large to keep; retryable: false) gets one attempt and takes nothing from the budget', async () => {
    const [eu] = await startOrigins(['eu'])
    const app = new Hono()
    app.use('/accounts/*', once({ replayCache: false }))
    app.post('/accounts/*', proxy({ origins: [{ name: eu!.name, url: eu!.url }], strategy: 'failover', timeoutMs: 1500, deadlineMs: 6000, maxResponseBytes: 8 }))
    const host = freshHost()
    const budget = new RetryBudget()
    const transport = vi.fn(async (r: Request) => app.fetch(r, env))
    const res = await onceFetch(`http://${host}/accounts/ann/deposits`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":100}' }, { fetch: transport, baseDelayMs: 1, budget })
    expect(res.status).toBe(500)
    expect(await res.json()).toMatchObject({ retryable: false })
    expect(transport).toHaveBeenCalledTimes(1)
    expect(budget.canRetry(host)).toBe(true)
  })

  it('a replay is the stored answer: a committed 503 is asked for once more at most, and onceInfo says replayed', async () => {
    let effects = 0
    const app = new Hono()
    app.post('/orders', once(), async (c) => {
      effects++
      await c.var.once.commit()
      return c.json({ error: 'mailer down after the order was taken' }, 503)
    })
    const transport = vi.fn(async (r: Request) => app.fetch(r, env))
    const res = await onceFetch(`http://${freshHost()}/orders`, { method: 'POST', body: '{}' }, { fetch: transport, baseDelayMs: 1, budget: false })
    expect(effects).toBe(1)
    expect(res.status).toBe(503)
    expect(transport).toHaveBeenCalledTimes(2)
    expect(res.headers.get('idempotent-replayed')).toBe('true')
    expect(onceInfo(res)).toMatchObject({ attempts: 2, replayed: true })
  })

  it("an app's own 409 with Retry-After, committed by once(), ends at its first replay", async () => {
    let effects = 0
    const app = new Hono()
    app.post('/seats', once(), (c) => (effects++, c.json({ error: 'seat taken' }, 409, { 'retry-after': '0' })))
    const transport = vi.fn(async (r: Request) => app.fetch(r, env))
    const res = await onceFetch(`http://${freshHost()}/seats`, { method: 'POST', body: '{"seat":"12A"}' }, { fetch: transport, budget: false })
    expect(effects).toBe(1)
    expect(res.status).toBe(409)
    expect(transport).toHaveBeenCalledTimes(2)
    expect(onceInfo(res)?.replayed).toBe(true)
  })

  it('a 409 problem of another type than in-flight, and a problem saying retryable: false on any status, are final at once', async () => {
    for (const [status, type, headers] of [
      [409, 'https://bank.example/conflict', { 'retry-after': '1' }],
      [503, 'https://bank.example/closed-for-good', {}],
      [429, 'https://bank.example/quota-gone', {}],
    ] as const) {
      const transport = vi.fn(async () => Response.json({ type, status, retryable: false }, { status, headers: { 'content-type': 'application/problem+json', ...headers } }))
      const res = await onceFetch(`http://${freshHost()}/x`, { method: 'POST' }, { fetch: transport, baseDelayMs: 1, budget: false })
      expect(res.status).toBe(status)
      expect(transport).toHaveBeenCalledTimes(1)
    }
  })

  it('an app 422 problem marked retryable is final: one attempt (docs/client.md: never 422)', async () => {
    let effects = 0
    const app = new Hono()
    app.post('/transfers', once(), (c) => {
      effects++
      return c.body(JSON.stringify({ type: 'https://bank.example/limit', title: 'Daily limit reached', status: 422, retryable: true }), 422, { 'content-type': 'application/problem+json' })
    })
    const transport = vi.fn(async (r: Request) => app.fetch(r, env))
    const res = await onceFetch(`http://${freshHost()}/transfers`, { method: 'POST', body: '{"amount":5000}' }, { fetch: transport, baseDelayMs: 1, budget: false })
    expect(res.status).toBe(422)
    expect(effects).toBe(1)
    expect(transport).toHaveBeenCalledTimes(1)
    expect(onceInfo(res)).toMatchObject({ attempts: 1, replayed: false })
  })

  it('media types are case-insensitive: Application/Problem+JSON with retryable: true is retried', async () => {
    let n = 0
    const transport = vi.fn(async () => (++n === 1 ? Response.json({ retryable: true }, { status: 500, headers: { 'content-type': 'Application/Problem+JSON' } }) : new Response('ok')))
    const res = await onceFetch(`http://${freshHost()}/y`, { method: 'POST' }, { fetch: transport, baseDelayMs: 1, budget: false })
    expect(res.status).toBe(200)
    expect(transport).toHaveBeenCalledTimes(2)
  })
})

describe('what the caller gives the client cannot lose the call', () => {
  it("an onRetry that reads the 409 in flight (its body is the hook's) or throws still gets the call retried, with its key", async () => {
    const app = new Hono()
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let effects = 0
    app.post('/deposits', once({ inFlight: 'reject' }), async (c) => {
      await gate
      effects++
      return c.json({ ok: true }, 201)
    })
    const key = newKey()
    const first = app.request('/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{}' }, env)
    const titles: string[] = []
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const out = await onceFetch(`http://${freshHost()}/deposits`, { method: 'POST', headers: { 'idempotency-key': key }, body: '{}' }, {
      fetch: async (r) => {
        const res = await app.fetch(r, env)
        if (res.status === 409) release()
        return res
      },
      onRetry: ({ response }) => {
        void response?.json().then((p) => titles.push((p as { title: string }).title))
        throw new Error('a logger that fails')
      },
    })
    await first
    expect(out.status).toBe(201)
    expect(onceInfo(out)).toMatchObject({ key, replayed: true })
    expect(effects).toBe(1)
    expect(titles).toHaveLength(1)
    expect(error.mock.calls.some(([m]) => /onRetry threw/.test(String(m)))).toBe(true)
    error.mockRestore()
  })

  it("a method passed without its object (env.API.fetch) fails at once with a TypeError saying how to pass it; bound, it works", async () => {
    const service = exports.default as unknown as { fetch: (r: Request) => Promise<Response> }
    const transport = vi.fn(service.fetch)
    const out = await createOnceFetch({ fetch: transport, baseDelayMs: 1, budget: false })(`http://${freshHost()}/accounts/${newKey()}`).catch((e: unknown) => e)
    expect(out).toBeInstanceOf(TypeError)
    expect(String(out)).toMatch(/\(request\) => env\.API\.fetch\(request\)/)
    expect(transport).toHaveBeenCalledTimes(1)
    const bound = await createOnceFetch({ fetch: (r) => service.fetch(r), budget: false })(`http://${freshHost()}/accounts/${newKey()}`)
    expect(bound).toBeInstanceOf(Response)
  })

  it("a streamed body that stalls is held to the caller's signal and to deadlineMs", async () => {
    const stalled = () => new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(new TextEncoder().encode('{"amount":')) })
    const transport = vi.fn(async () => new Response('ok'))
    const controller = new AbortController()
    const call = onceFetch(`http://${freshHost()}/y`, { method: 'POST', body: stalled(), duplex: 'half', signal: controller.signal } as RequestInit, { fetch: transport, timeoutMs: 200, deadlineMs: 5000 })
    setTimeout(() => controller.abort(new Error('user left')), 50)
    expect(await within(call.catch((e: unknown) => e), 2000)).toMatchObject({ name: 'OnceFetchError', reason: 'aborted', attempts: 0 })
    const late = onceFetch(`http://${freshHost()}/y`, { method: 'POST', body: stalled(), duplex: 'half' } as RequestInit, { fetch: transport, timeoutMs: 100, deadlineMs: 300 })
    expect(await within(late.catch((e: unknown) => e), 2000)).toMatchObject({ name: 'OnceFetchError', reason: 'deadline', attempts: 0 })
    expect(transport).not.toHaveBeenCalled()
  })

  it('the deadline cutting an attempt short is reported as the deadline, not as a timeout of timeoutMs', async () => {
    const started = Date.now()
    const err = (await onceFetch(`http://${freshHost()}/y`, { method: 'POST' }, { fetch: () => new Promise<Response>(() => {}), timeoutMs: 10_000, deadlineMs: 300 }).catch((e: unknown) => e)) as OnceFetchError
    expect(Date.now() - started).toBeLessThan(2000)
    expect(err).toBeInstanceOf(OnceFetchError)
    expect(err.reason).toBe('deadline')
    expect(err.message).not.toContain('10000 ms')
    // A timeout of its own is still one, with the time it had.
    const own = (await onceFetch(`http://${freshHost()}/y`, { method: 'POST' }, { fetch: () => new Promise<Response>(() => {}), timeoutMs: 50, deadlineMs: 5000, retries: 0 }).catch((e: unknown) => e)) as OnceFetchError
    expect(own).toMatchObject({ reason: 'timeout', message: expect.stringContaining('50 ms') })
  })

  it('timers over 2^31-1 ms (which setTimeout fires at once) are refused by name', () => {
    for (const name of ['timeoutMs', 'deadlineMs', 'baseDelayMs', 'maxDelayMs'] as const) {
      expect(() => createOnceFetch({ [name]: Number.MAX_SAFE_INTEGER })).toThrow(new RegExp(`${name}: expected an integer >= \\d+ and <= 2147483647`))
      expect(() => createOnceFetch({ [name]: 2 ** 31 - 1 })).not.toThrow()
    }
  })

  it("Hono's app.fetch and app.request fit as a test transport, and a constant list of methods as methods (types)", async () => {
    const app = new Hono().post('/x', once(), (c) => c.text('ok', 201))
    const WRITES = ['POST', 'PATCH'] as const
    const viaFetch = createOnceFetch({ fetch: (r) => app.fetch(r, env), methods: WRITES, budget: false })
    const viaRequest = createOnceFetch({ fetch: (r) => app.request(r, undefined, env), budget: false })
    expect((await viaFetch(`http://${freshHost()}/x`, { method: 'POST' })).status).toBe(201)
    expect((await viaRequest(`http://${freshHost()}/x`, { method: 'POST' })).status).toBe(201)
  })
})

describe('the key, read as the server reads it', () => {
  it('the "retry later" recipe works for a key of the caller with a space or a quote: headerOfKey(e.key) gets the replay', async () => {
    let effects = 0
    const app = new Hono()
    app.post('/pay', once(), async (c) => (effects++, c.json({ ok: true }, 201)))
    for (const [header, bare] of [
      ['"order 42"', 'order 42'],
      ['"say \\"hi\\""', 'say "hi"'],
    ] as const) {
      const url = `http://${freshHost()}/pay`
      const e = (await onceFetch(url, { method: 'POST', body: '{"amount":1}', headers: { 'idempotency-key': header } }, { fetch: lostAfter(app), retries: 0 }).catch((x: unknown) => x)) as OnceFetchError
      expect(e.key).toBe(bare)
      const again = await onceFetch(url, { method: 'POST', body: '{"amount":1}', headers: { 'idempotency-key': headerOfKey(e.key!) } }, { fetch: async (r) => app.fetch(r, env) })
      expect(again.headers.get('idempotent-replayed')).toBe('true')
    }
    expect(effects).toBe(2)
  })

  it('a key with NBSP, VT or FF around it is not sent as the plain key: the server refuses it, as it does raw', async () => {
    let effects = 0
    const app = new Hono()
    app.post('/deposits', once(), async (c) => (effects++, c.json({ n: effects }, 201)))
    const transport = async (r: Request) => app.fetch(r, env)
    for (const odd of ['\u00a0', '\u000b', '\u000c']) {
      const url = `http://${freshHost()}/deposits`
      const key = newKey()
      expect((await onceFetch(url, { method: 'POST', body: '{}', headers: { 'idempotency-key': key } }, { fetch: transport })).status).toBe(201)
      const b = await onceFetch(url, { method: 'POST', body: '{}', headers: { 'idempotency-key': key + odd } }, { fetch: transport })
      expect(b.headers.get('idempotent-replayed')).toBeNull()
      expect(b.status).toBe(400)
    }
    expect(effects).toBe(3)
  })

  it('property: whatever header the caller sets, the client sends a key the server reads as it reads the header itself', () => {
    const chars = fc.constantFrom(' ', '\t', '"', '\\', 'a', 'Z', '0', '-', ',', '\u00a0', '\u000b', '\u000c', '\u00e9', '\u2028', '\ufeff')
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 12 }).map((a) => a.join('')), (header) => {
        const key = keyOfHeader(header)
        // Sent unchanged: the server answers what it answers to the header itself.
        if (key === undefined) return
        expect(parseIdempotencyKey(headerOfKey(key))).toEqual(parseIdempotencyKey(header))
      }),
      { numRuns: 2000 },
    )
  })
})
