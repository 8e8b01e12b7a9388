import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import v8 from 'node:v8'
import vm from 'node:vm'
import { describe, expect, it } from 'vitest'
import { OnceFetchError, onceFetch, onceInfo } from '../../src/client/index.js'

/**
 * The client in Node (undici's fetch), where browsers' request options exist
 * and `'patch'` is not upper-cased, unlike in workerd.
 */

/** A transport that records what it gets and answers 503 until the last attempt. */
function recording(failures: number) {
  const seen: Request[] = []
  const transport = async (r: Request) => (seen.push(r), new Response(null, { status: seen.length <= failures ? 503 : 201 }))
  return { seen, transport }
}

describe('onceFetch in Node', () => {
  it("reads methods in any case: 'patch' gets a key and keeps it on every retry", async () => {
    const { seen, transport } = recording(2)
    const res = await onceFetch('http://node.test/items/1', { method: 'patch', body: '{}' }, { fetch: transport, baseDelayMs: 1, budget: false })
    expect(res.status).toBe(201)
    expect(seen.map((r) => r.method)).toEqual(['patch', 'patch', 'patch'])
    const keys = new Set(seen.map((r) => r.headers.get('idempotency-key')))
    expect(keys.size).toBe(1)
    expect([...keys][0]).toBe(`"${onceInfo(res)?.key}"`)
  })

  it("gives a keyless 'patch' one attempt", async () => {
    const { seen, transport } = recording(5)
    const res = await onceFetch('http://node.test/items/1', { method: 'patch', body: '{}' }, { fetch: transport, methods: ['POST'], baseDelayMs: 1, budget: false })
    expect(res.status).toBe(503)
    expect(seen).toHaveLength(1)
    expect(seen[0]?.headers.has('idempotency-key')).toBe(false)
  })

  it('keeps every request option on every attempt', async () => {
    const { seen, transport } = recording(2)
    const init = {
      method: 'POST',
      body: 'x',
      credentials: 'include',
      mode: 'cors',
      cache: 'no-store',
      keepalive: true,
      referrer: 'http://app.node.test/page',
      referrerPolicy: 'no-referrer-when-downgrade',
      integrity: 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=',
      priority: 'high',
      redirect: 'manual',
    } as const satisfies RequestInit
    await onceFetch('http://node.test/y', init, { fetch: transport, baseDelayMs: 1, budget: false })
    expect(seen).toHaveLength(3)
    for (const r of seen) {
      expect({
        credentials: r.credentials,
        mode: r.mode,
        cache: r.cache,
        keepalive: r.keepalive,
        referrer: r.referrer,
        referrerPolicy: r.referrerPolicy,
        integrity: r.integrity,
        redirect: r.redirect,
      }).toEqual({
        credentials: 'include',
        mode: 'cors',
        cache: 'no-store',
        keepalive: true,
        referrer: 'http://app.node.test/page',
        referrerPolicy: 'no-referrer-when-downgrade',
        integrity: init.integrity,
        redirect: 'manual',
      })
      expect(await r.text()).toBe('x')
    }
  })

  it('keeps the default referrer as it is', async () => {
    const { seen, transport } = recording(1)
    await onceFetch('http://node.test/y', { method: 'POST' }, { fetch: transport, baseDelayMs: 1, budget: false })
    expect(seen.map((r) => [r.referrer, r.referrerPolicy])).toEqual([
      ['about:client', ''],
      ['about:client', ''],
    ])
  })
})

describe('onceFetch in Node against a server that never answers, with garbage collections meanwhile', () => {
  // Node's fetch loses the signal of a Request built from another after a GC (nodejs/undici#4068): the attempt's
  // timeout, the deadline and the caller's abort must hold anyway.
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void

  /** A server that takes every request and never answers (or, `stalled`, starts a problem's body and never ends it); closed after `f`. */
  async function withHungServer<T>(f: (url: string) => Promise<T>, stalled = false): Promise<T> {
    const server: Server = createServer((_req, res) => {
      if (!stalled) return
      res.writeHead(500, { 'content-type': 'application/problem+json' })
      res.write('{"type":')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      return await f(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`)
    } finally {
      server.closeAllConnections()
      server.close()
    }
  }

  /** Forces collections every 20 ms while `work` runs. */
  async function collecting<T>(work: Promise<T>): Promise<T> {
    const timer = setInterval(gc, 20)
    try {
      return await work
    } finally {
      clearInterval(timer)
    }
  }

  /** Calls a hung server under collections; the call must fail with `reason` within `withinMs`. */
  async function stops(reason: RegExp, withinMs: number, init: RequestInit, options: Parameters<typeof onceFetch>[2], stalled = false): Promise<void> {
    await withHungServer(async (url) => {
      const started = Date.now()
      const err = await collecting(onceFetch(url, { method: 'POST', body: 'x', ...init }, { baseDelayMs: 1, budget: false, ...options })).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(OnceFetchError)
      expect((err as OnceFetchError).reason).toMatch(reason)
      expect(Date.now() - started).toBeLessThan(withinMs)
    }, stalled)
  }

  it('times each attempt out and stops at the deadline', () => stops(/timeout|deadline/, 2500, {}, { retries: 2, timeoutMs: 200, deadlineMs: 1000 }))

  it("stops when the caller's signal aborts", async () => {
    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error('user left')), 300)
    await stops(/aborted/, 2000, { signal: controller.signal }, { timeoutMs: 10_000 })
  })

  it("times out an attempt whose answer's problem body stalls, rather than returning it as final", () =>
    stops(/timeout|deadline/, 2500, {}, { retries: 1, timeoutMs: 200, deadlineMs: 1000 }, true))
})
