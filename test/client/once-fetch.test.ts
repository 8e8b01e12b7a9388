import { env, exports } from 'cloudflare:workers'
import { hc } from 'hono/client'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createOnceFetch, onceFetch, onceInfo, OnceFetchError, RetryBudget, type RetryInfo } from '../../src/client/index.js'
import type { BankApp } from '../../examples/bank/worker.js'
import { bank, newKey } from '../helpers.js'

/** The real bank Worker (wrangler.toml's main), reached in-process. */
const worker = (request: Request): Promise<Response> => exports.default.fetch(request)

/**
 * A transport whose connection drops after the server has handled the
 * request. `drop(call, attempt)` picks which: `call` numbers the logical
 * calls (by idempotency key) in order of arrival, `attempt` their attempts.
 */
function dropsAfterHandling(drop: (call: number, attempt: number) => boolean) {
  const calls = new Map<string | null, { call: number; attempts: number }>()
  return async (request: Request): Promise<Response> => {
    const key = request.headers.get('idempotency-key')
    const seen = calls.get(key) ?? { call: calls.size + 1, attempts: 0 }
    calls.set(key, seen)
    seen.attempts++
    const res = await worker(request)
    if (drop(seen.call, seen.attempts)) {
      await res.body?.cancel()
      throw new TypeError('Network connection lost.')
    }
    return res
  }
}

const balanceOf = async (id: string) => ((await (await worker(new Request(`http://bank.test/accounts/${id}`))).json()) as { balance: number }).balance

const deposit = (id: string, amount = 100, headers: Record<string, string> = {}): [string, RequestInit] => [
  `http://bank.test/accounts/${id}/deposits`,
  { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ amount }) },
]

/** A host of its own per test: the default retry budget is shared per host across the process. */
const freshHost = () => `h-${crypto.randomUUID()}.test`

afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

describe('onceFetch against the bank Worker', () => {
  it('a dropped connection after the deposit ran: the retry gets the stored reply, the money moves once', async () => {
    const account = newKey()
    const retries: RetryInfo[] = []
    const res = await onceFetch(...deposit(account), { fetch: dropsAfterHandling((_call, attempt) => attempt === 1), onRetry: (i) => retries.push(i), baseDelayMs: 1 })
    expect(res.status).toBe(201)
    expect(onceInfo(res)).toMatchObject({ attempts: 2, replayed: true })
    expect(retries.map((r) => r.reason)).toEqual(['network'])
    expect(retries[0]?.key).toBe(onceInfo(res)?.key)
    expect(await balanceOf(account)).toBe(100)
  })

  it('100 calls in parallel, every third losing its first answer: each applied exactly once', async () => {
    const account = newKey()
    const call = createOnceFetch({ fetch: dropsAfterHandling((call, attempt) => call % 3 === 0 && attempt === 1), baseDelayMs: 5, budget: false })
    const answers = await Promise.all(Array.from({ length: 100 }, () => call(...deposit(account, 7))))
    expect(answers.every((r) => r.status === 201)).toBe(true)
    expect(answers.some((r) => onceInfo(r)?.replayed)).toBe(true)
    expect(new Set(answers.map((r) => onceInfo(r)?.key)).size).toBe(100)
    expect(await balanceOf(account)).toBe(700)
  })

  it('never retries a 422: the key was reused for another request', async () => {
    const account = newKey()
    const key = newKey()
    const transport = vi.fn(worker)
    await onceFetch(...deposit(account, 100, { 'idempotency-key': key }), { fetch: transport })
    const res = await onceFetch(...deposit(account, 999, { 'idempotency-key': key }), { fetch: transport })
    expect(res.status).toBe(422)
    expect(onceInfo(res)?.attempts).toBe(1)
    expect(transport).toHaveBeenCalledTimes(2)
    expect(await balanceOf(account)).toBe(100)
  })

  it('keeps the caller’s own key and plugs into hc<BankApp>, typed end to end', async () => {
    const account = newKey()
    const client = hc<BankApp>('http://bank.test', { fetch: createOnceFetch({ fetch: dropsAfterHandling((_call, attempt) => attempt === 1), baseDelayMs: 1 }) })
    const res = await client.accounts[':id'].deposits.$post({ param: { id: account }, json: { amount: 250 } })
    expect(res.status).toBe(201)
    if (res.status === 201) {
      const body = await res.json()
      const balance: number = body.balance
      expect(balance).toBe(250)
    }
    const got = await client.accounts[':id'].$get({ param: { id: account } })
    expect((await got.json()).balance).toBe(250)
  })
})

describe('retries', () => {
  it('retries a 409 in flight after its Retry-After, then gets the replay', async () => {
    const { app, hold, effects } = bank({ inFlight: 'reject' })
    const key = newKey()
    const open = hold(key)
    const first = app.request('/deposits', { method: 'POST', headers: { 'idempotency-key': key }, body: '{"amount":100}' }, env)
    const reasons: string[] = []
    const res = await onceFetch(`http://${freshHost()}/deposits`, { method: 'POST', headers: { 'idempotency-key': key }, body: '{"amount":100}' }, {
      fetch: async (request) => {
        const r = await app.request(request, undefined, env)
        // the original is admitted when its duplicate sees 409; let it finish now
        if (r.status === 409) open()
        return r
      },
      onRetry: (i) => reasons.push(`${i.reason}:${i.delayMs}`),
    })
    expect((await first).status).toBe(201)
    expect(reasons).toEqual(['in-flight:1000'])
    expect(res.status).toBe(201)
    expect(onceInfo(res)).toMatchObject({ attempts: 2, replayed: true })
    expect(effects.get(key)).toBe(1)
  })

  it('backs off with full jitter on 503 three times, then succeeds (fake timers)', async () => {
    vi.useFakeTimers()
    vi.spyOn(Math, 'random').mockReturnValue(0.5)
    let calls = 0
    const delays: number[] = []
    const pending = onceFetch(`http://${freshHost()}/y`, { method: 'POST' }, {
      fetch: async () => (++calls <= 3 ? new Response('busy', { status: 503 }) : new Response('ok', { status: 201 })),
      onRetry: (i) => delays.push(i.delayMs),
    })
    let settled = false
    void pending.then(() => (settled = true))
    await vi.advanceTimersByTimeAsync(349)
    expect(settled).toBe(false) // 50 + 100 + 200 ms of backoff have not all passed
    await vi.advanceTimersByTimeAsync(1)
    const res = await pending
    expect(delays).toEqual([50, 100, 200])
    expect(res.status).toBe(201)
    expect(onceInfo(res)?.attempts).toBe(4)
  })

  it('honours Retry-After on 429 and retries problem+json marked retryable', async () => {
    const answers = [
      new Response('slow down', { status: 429, headers: { 'retry-after': '0' } }),
      Response.json({ status: 500, retryable: true }, { status: 500, headers: { 'content-type': 'application/problem+json' } }),
      new Response('ok'),
    ]
    const reasons: string[] = []
    const res = await onceFetch(`http://${freshHost()}/y`, { method: 'PUT' }, { fetch: async () => answers.shift()!, baseDelayMs: 1, onRetry: (i) => reasons.push(i.reason) })
    expect(res.status).toBe(200)
    expect(reasons).toEqual(['status', 'retryable-problem'])
  })

  it('does not retry a problem marked retryable: false, nor a 409 without Retry-After', async () => {
    for (const answer of [
      () => Response.json({ retryable: false }, { status: 500, headers: { 'content-type': 'application/problem+json' } }),
      () => new Response('conflict', { status: 409 }),
    ]) {
      const transport = vi.fn(async () => answer())
      await onceFetch(`http://${freshHost()}/y`, { method: 'POST' }, { fetch: transport })
      expect(transport).toHaveBeenCalledTimes(1)
    }
  })

  it('sends the same key and identical body bytes on every attempt, even from a stream', async () => {
    const seen: [string | null, string][] = []
    let n = 0
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"amount":'))
        c.enqueue(new TextEncoder().encode('5}'))
        c.close()
      },
    })
    await onceFetch(`http://${freshHost()}/y`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit, {
      baseDelayMs: 1,
      fetch: async (r) => {
        seen.push([r.headers.get('idempotency-key'), await r.text()])
        return new Response(null, { status: ++n < 3 ? 502 : 204 })
      },
    })
    expect(seen).toHaveLength(3)
    expect(new Set(seen.map(([k]) => k)).size).toBe(1)
    expect(seen[0]?.[0]).toMatch(/^"[0-9a-f-]{36}"$/)
    expect(seen.every(([, b]) => b === '{"amount":5}')).toBe(true)
  })

  it('adds no key to safe methods, but retries them', async () => {
    const keys: (string | null)[] = []
    let n = 0
    await onceFetch(`http://${freshHost()}/y`, {}, { baseDelayMs: 1, fetch: async (r) => (keys.push(r.headers.get('idempotency-key')), new Response(null, { status: ++n < 2 ? 503 : 200 })) })
    expect(keys).toEqual([null, null])
  })
})

describe('limits', () => {
  it('times out a hung attempt and gives up at the deadline with OnceFetchError', async () => {
    const hang = (r: Request) => new Promise<Response>((_, reject) => r.signal.addEventListener('abort', () => reject(r.signal.reason)))
    const started = Date.now()
    const err = await onceFetch(`http://${freshHost()}/y`, { method: 'POST' }, { fetch: hang, timeoutMs: 40, deadlineMs: 150, baseDelayMs: 1 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(OnceFetchError)
    expect((err as OnceFetchError).reason).toMatch(/timeout|deadline/)
    expect((err as OnceFetchError).attempts).toBeGreaterThanOrEqual(2)
    expect(Date.now() - started).toBeLessThan(1000)
  })

  it('holds the timeout and the caller abort against a transport that ignores the signal (never settles)', async () => {
    const deaf = () => new Promise<Response>(() => {})
    const timedOut = await onceFetch(`http://${freshHost()}/y`, { method: 'POST' }, { fetch: deaf, timeoutMs: 40, deadlineMs: 150, baseDelayMs: 1 }).catch((e: unknown) => e)
    expect((timedOut as OnceFetchError).reason).toMatch(/timeout|deadline/)
    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error('user left')), 30)
    const aborted = await onceFetch(`http://${freshHost()}/y`, { method: 'POST', signal: controller.signal }, { fetch: deaf, timeoutMs: 10_000 }).catch((e: unknown) => e)
    expect(aborted).toMatchObject({ reason: 'aborted', attempts: 1 })
  })

  it('stops at once when the caller aborts, mid-backoff, with an OnceFetchError that carries the key', async () => {
    const controller = new AbortController()
    const left = new Error('user left')
    const transport = vi.fn(async (r: Request) => new Response(r.headers.get('idempotency-key'), { status: 503, headers: { 'retry-after': '5' } }))
    const pending = onceFetch(`http://${freshHost()}/y`, { method: 'POST', signal: controller.signal }, { fetch: transport, onRetry: () => controller.abort(left) })
    const started = Date.now()
    const err = await pending.catch((e: unknown) => e)
    expect(Date.now() - started).toBeLessThan(1000) // not the 5 s Retry-After
    expect(transport).toHaveBeenCalledTimes(1)
    expect(err).toBeInstanceOf(OnceFetchError)
    expect(err).toMatchObject({ reason: 'aborted', attempts: 1, cause: left })
    const sent = transport.mock.calls[0]![0].headers.get('idempotency-key')
    expect(sent).toBe(`"${(err as OnceFetchError).key}"`)
  })

  it('returns the last answer when retries run out, and the budget stops retry storms', async () => {
    const transport = vi.fn(async () => new Response(null, { status: 503 }))
    const res = await onceFetch(`http://${freshHost()}/y`, { method: 'POST' }, { fetch: transport, retries: 2, baseDelayMs: 1, budget: false })
    expect(res.status).toBe(503)
    expect(onceInfo(res)?.attempts).toBe(3)

    const budget = new RetryBudget({ maxTokens: 10, tokenRatio: 0.1 })
    const storm = vi.fn(async () => new Response(null, { status: 503 }))
    const call = createOnceFetch({ fetch: storm, budget, baseDelayMs: 1 })
    for (let i = 0; i < 5; i++) await call('http://down.test/', { method: 'POST' })
    // 5 tokens of 10 gone after the first failures: from then on one attempt per call
    expect(budget.canRetry('down.test')).toBe(false)
    expect(storm.mock.calls.length).toBeLessThanOrEqual(10)
    expect(budget.canRetry('other.test')).toBe(true)
  })

  it('shares one budget per host across calls that pass their own options', async () => {
    const host = `shared-${Date.now()}.test`
    const transport = vi.fn(async () => new Response(null, { status: 503 }))
    for (let i = 0; i < 8; i++) await onceFetch(`http://${host}/`, { method: 'POST' }, { fetch: transport, baseDelayMs: 1 })
    // without sharing, each call would get a fresh budget and retry 4 times: 40 attempts
    expect(transport.mock.calls.length).toBeLessThan(20)
  })

  it('rejects bad options naming them', () => {
    expect(() => createOnceFetch({ retries: -1 })).toThrow(/retries/)
    expect(() => createOnceFetch({ timeoutMs: 0 })).toThrow(/timeoutMs/)
    expect(() => createOnceFetch({ retry: 3 } as never)).toThrow(/retry/)
    expect(() => createOnceFetch({ retries: 1.5, budget: true, methods: ['PO ST'], fetch: undefined } as never)).toThrow(
      'hono-once: invalid hono-once/client options: retries: expected an integer >= 0 and <= 10; budget: expected false or a RetryBudget; methods: expected HTTP method names',
    )
  })
})

describe('which calls are retried (RFC 9110 §9.2.2)', () => {
  const failing = () => vi.fn(async (_r: Request) => new Response(null, { status: 503 }))

  it('gives a keyless non-idempotent method exactly one attempt', async () => {
    for (const method of ['PATCH', 'POST', 'PURGE']) {
      const transport = failing()
      const res = await onceFetch(`http://${freshHost()}/y`, { method }, { fetch: transport, methods: ['DELETE'], baseDelayMs: 1, budget: false })
      expect(res.status).toBe(503)
      expect(transport).toHaveBeenCalledTimes(1)
      expect(transport.mock.calls[0]![0].headers.has('idempotency-key')).toBe(false)
      expect(onceInfo(res)).toMatchObject({ key: undefined, attempts: 1 })
    }
    const lost = vi.fn(async (): Promise<Response> => {
      throw new TypeError('Network connection lost.')
    })
    const err = await onceFetch(`http://${freshHost()}/y`, { method: 'PATCH' }, { fetch: lost, methods: ['POST'], baseDelayMs: 1, budget: false }).catch((e: unknown) => e)
    expect(err).toMatchObject({ reason: 'network', attempts: 1, key: undefined })
    expect(lost).toHaveBeenCalledTimes(1)
  })

  it('retries a keyless idempotent method: GET, HEAD, OPTIONS, PUT, DELETE', async () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']) {
      const transport = failing()
      await onceFetch(`http://${freshHost()}/y`, { method }, { fetch: transport, methods: ['POST'], retries: 2, baseDelayMs: 1, budget: false })
      expect(transport).toHaveBeenCalledTimes(3)
      expect(transport.mock.calls.every(([r]) => !r.headers.has('idempotency-key'))).toBe(true)
    }
  })

  it('retries any method that carries a key, the caller’s or its own, and reads methods in any case', async () => {
    const own = failing()
    await onceFetch(`http://${freshHost()}/y`, { method: 'PURGE', headers: { 'idempotency-key': 'p-1' } }, { fetch: own, retries: 2, baseDelayMs: 1, budget: false })
    expect(own).toHaveBeenCalledTimes(3)
    const listed = failing()
    await onceFetch(`http://${freshHost()}/y`, { method: 'PURGE' }, { fetch: listed, methods: ['purge'], retries: 2, baseDelayMs: 1, budget: false })
    expect(listed).toHaveBeenCalledTimes(3)
    expect(new Set(listed.mock.calls.map(([r]) => r.headers.get('idempotency-key'))).size).toBe(1)
  })
})

describe('every attempt keeps the caller’s request options', () => {
  it('keeps cache, redirect and cf on every attempt, and accepts options workerd ignores', async () => {
    const seen: Request[] = []
    let n = 0
    const init = {
      method: 'POST',
      body: '{"amount":1}',
      cache: 'no-store',
      redirect: 'manual',
      cf: { cacheTtl: 7 },
      // not implemented by workerd: accepted and ignored, never a throw
      credentials: 'include',
      mode: 'cors',
      keepalive: true,
      referrerPolicy: 'no-referrer',
      priority: 'high',
    } as RequestInit
    const res = await onceFetch(`http://${freshHost()}/y`, init, {
      baseDelayMs: 1,
      budget: false,
      fetch: async (r) => (seen.push(r), new Response(null, { status: ++n < 3 ? 503 : 201 })),
    })
    expect(res.status).toBe(201)
    expect(seen).toHaveLength(3)
    for (const r of seen) {
      expect(r.cache).toBe('no-store')
      expect(r.redirect).toBe('manual')
      expect(r.cf).toMatchObject({ cacheTtl: 7 })
      expect(await r.text()).toBe('{"amount":1}')
    }
  })

  it('keeps the options of a Request given as input, with a signal of its own per attempt', async () => {
    const seen: Request[] = []
    let n = 0
    const input = new Request(`http://${freshHost()}/y`, { method: 'PUT', cache: 'no-store', redirect: 'manual', headers: { 'x-a': '1' } })
    await onceFetch(input, undefined, { baseDelayMs: 1, budget: false, fetch: async (r) => (seen.push(r), new Response(null, { status: ++n < 2 ? 502 : 200 })) })
    expect(seen.map((r) => [r.method, r.cache, r.redirect, r.headers.get('x-a')])).toEqual([
      ['PUT', 'no-store', 'manual', '1'],
      ['PUT', 'no-store', 'manual', '1'],
    ])
    expect(seen[0]!.signal).not.toBe(seen[1]!.signal)
  })
})

describe('409 in flight, aborts and the key', () => {
  it('does not charge a 409 in flight to the retry budget, and retries it even when the budget is low', async () => {
    const host = freshHost()
    const budget = new RetryBudget({ maxTokens: 10, tokenRatio: 0.1 })
    const inFlightThen = (ok: number) => {
      let n = 0
      return async () => (++n <= 2 ? new Response(null, { status: 409, headers: { 'retry-after': '0' } }) : new Response(null, { status: ok }))
    }
    const res = await onceFetch(`http://${host}/y`, { method: 'POST' }, { fetch: inFlightThen(201), budget })
    expect(onceInfo(res)).toMatchObject({ attempts: 3 })
    expect(budget.tokens(host)).toBe(10) // two 409s took nothing

    for (let i = 0; i < 5; i++) budget.onFailure(host)
    expect(budget.canRetry(host)).toBe(false)
    const waited = await onceFetch(`http://${host}/y`, { method: 'POST' }, { fetch: inFlightThen(201), budget })
    expect(waited.status).toBe(201)
    expect(onceInfo(waited)?.attempts).toBe(3)
  })

  it('an abort during an attempt rejects with the key; retrying later with it replays, and the money moves once', async () => {
    const account = newKey()
    const controller = new AbortController()
    // The server handles the deposit, but the caller gives up before the answer arrives.
    const slow = async (request: Request): Promise<Response> => {
      const res = await worker(request)
      controller.abort()
      await res.body?.cancel()
      expect(request.signal.aborted).toBe(true)
      throw request.signal.reason
    }
    const [url, init] = deposit(account, 40)
    const err = await onceFetch(url, { ...init, signal: controller.signal }, { fetch: slow }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(OnceFetchError)
    expect(err).toMatchObject({ reason: 'aborted', attempts: 1 })
    expect((err as OnceFetchError).cause).toBe(controller.signal.reason)
    expect((err as OnceFetchError).cause).toMatchObject({ name: 'AbortError' })
    const key = (err as OnceFetchError).key!
    expect(key).not.toMatch(/"/)

    const again = await onceFetch(...deposit(account, 40, { 'idempotency-key': `"${key}"` }), { fetch: worker })
    expect(again.status).toBe(201)
    expect(onceInfo(again)).toMatchObject({ key, replayed: true })
    expect(await balanceOf(account)).toBe(40)
  })

  it('an already aborted signal sends nothing and still names the key', async () => {
    const transport = vi.fn(worker)
    const err = await onceFetch(`http://${freshHost()}/y`, { method: 'POST', signal: AbortSignal.abort() }, { fetch: transport }).catch((e: unknown) => e)
    expect(err).toMatchObject({ reason: 'aborted', attempts: 0 })
    expect((err as OnceFetchError).key).toMatch(/^[0-9a-f-]{36}$/)
    expect(transport).not.toHaveBeenCalled()
  })

  it('OnceInfo.key and RetryInfo.key are the bare key; the header is always its sf-string', async () => {
    const cases: [string | undefined, RegExp | string, string | RegExp][] = [
      [undefined, /^"[0-9a-f-]{36}"$/, /^[0-9a-f-]{36}$/],
      ['abc-1', '"abc-1"', 'abc-1'],
      ['"abc-1"', '"abc-1"', 'abc-1'],
      [' "abc-1" ', '"abc-1"', 'abc-1'],
      ['"a\\"b\\\\c"', '"a\\"b\\\\c"', 'a"b\\c'],
    ]
    for (const [given, header, key] of cases) {
      const sent: (string | null)[] = []
      const retried: (string | undefined)[] = []
      let n = 0
      const res = await onceFetch(`http://${freshHost()}/y`, { method: 'POST', headers: given === undefined ? {} : { 'idempotency-key': given } }, {
        baseDelayMs: 1,
        budget: false,
        fetch: async (r) => (sent.push(r.headers.get('idempotency-key')), new Response(null, { status: ++n < 2 ? 503 : 201 })),
        onRetry: (i) => retried.push(i.key),
      })
      expect(sent).toHaveLength(2)
      expect(sent[0]).toBe(sent[1])
      expect(sent[0]).toMatch(header)
      expect(onceInfo(res)?.key).toMatch(key)
      expect(retried).toEqual([onceInfo(res)?.key])
      expect(sent[0]).toBe(`"${onceInfo(res)!.key!.replace(/["\\]/g, '\\$&')}"`)
    }
  })

  it('sends a header that is not a key unchanged, for the server to refuse', async () => {
    const res = await onceFetch(...deposit(newKey(), 1, { 'idempotency-key': '"unterminated' }), { fetch: worker })
    expect(res.status).toBe(400)
    expect(onceInfo(res)).toMatchObject({ key: '"unterminated', attempts: 1 })
  })
})
