import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { dispatch, once, proxy, type ProxyOptions } from '../../src/index.js'
import { type FarmOrigin, startOrigins } from '../farm.js'
import { chunked, newKey, problemOf } from '../helpers.js'

// proxy() and dispatch() read the body they send whole (it is signed, and sent again on failover). Without once() in
// front, nothing bounded it: a keyless write's body was read into memory whatever its size. The kind: every reader of a
// request body in the library holds it to a limit and answers 413 body-too-large after the client has sent it. Here
// the one reader once() and onceReceiver() use is proxy()'s too, with its own maxBodyBytes (default 1 MiB).
const MAX = 1024

const list = (origins: FarmOrigin[]) => origins.map(({ name, url }) => ({ name, url }))

/** A deposit of 1 whose JSON is exactly `size` bytes (at least 32). */
function deposit(size: number): Uint8Array {
  const head = '{"amount":1,"pad":"'
  return new TextEncoder().encode(`${head}${'x'.repeat(size - head.length - 2)}"}`)
}

function send(app: Hono, size: number, framing: 'length' | 'chunked', chunk = 100) {
  const bytes = deposit(size)
  const body = framing === 'length' ? bytes : chunked(bytes, chunk)
  const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body, ...(framing === 'chunked' ? { duplex: 'half' } : {}) }
  return app.request('/accounts/zed/deposits', init as RequestInit, env)
}

describe('proxy()/dispatch() without once(): the body sent is bounded by maxBodyBytes', () => {
  it('a declared or chunked body over maxBodyBytes is a 413 body-too-large and nothing reaches the origin; within it, the origin gets it', async () => {
    const [eu] = await startOrigins(['eu'])
    const app = new Hono().post('/accounts/*', proxy({ origins: list([eu!]), strategy: 'failover', maxBodyBytes: MAX }))
    for (const framing of ['length', 'chunked'] as const) {
      const over = await send(app, MAX + 1, framing)
      expect(over.status).toBe(413)
      expect(await problemOf(over)).toMatchObject({ type: expect.stringMatching(/body-too-large$/), status: 413, detail: `The request body is larger than ${MAX} bytes.` })
    }
    expect((await eu!.stats()).requests).toBe(0)
    for (const framing of ['length', 'chunked'] as const) expect((await send(app, MAX, framing)).status).toBe(201)
    expect((await eu!.stats()).requests).toBe(2)
  })

  it('any body around the limit, either framing, any chunk size: 413 exactly when it is over, and only then', async () => {
    const [eu] = await startOrigins(['eu'])
    const app = new Hono().post('/accounts/*', proxy({ origins: list([eu!]), strategy: 'failover', maxBodyBytes: MAX }))
    let sent = 0
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 32, max: 3 * MAX }), fc.constantFrom('length', 'chunked'), fc.integer({ min: 1, max: 1100 }), async (size, framing, chunk) => {
        const res = await send(app, size, framing as 'length' | 'chunked', chunk)
        if (size > MAX) expect(res.status).toBe(413)
        else {
          expect(res.status).toBe(201)
          sent++
        }
        await res.body?.cancel()
      }),
      { numRuns: 40 },
    )
    expect((await eu!.stats()).requests).toBe(sent)
  })

  it('the default is 1 MiB; a request the app made for dispatch() is held to it as well, and stays readable', async () => {
    const [eu] = await startOrigins(['eu'])
    const options: ProxyOptions = { origins: list([eu!]), strategy: 'failover' }
    const app = new Hono().post('/accounts/*', async (c) => {
      const made = new Request(c.req.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: deposit(Number(c.req.query('size'))) })
      const res = await dispatch(c, made, options)
      return res.status === 413 ? new Response(`${res.status} ${(await made.arrayBuffer()).byteLength}`, { status: 413 }) : res
    })
    const over = await app.request(`/accounts/zed/deposits?size=${1024 * 1024 + 1}`, { method: 'POST' }, env)
    expect(over.status).toBe(413)
    expect(await over.text()).toBe(`413 ${1024 * 1024 + 1}`)
    expect((await eu!.stats()).requests).toBe(0)
    expect((await app.request(`/accounts/zed/deposits?size=${1024 * 1024}`, { method: 'POST' }, env)).status).toBe(201)
  })

  it('behind once(), a body too large for dispatch() gives the key back (nothing was sent): a retry runs again, not a stored 413', async () => {
    const [eu] = await startOrigins(['eu'])
    const options: ProxyOptions = { origins: list([eu!]), strategy: 'failover', maxBodyBytes: MAX }
    let runs = 0
    const app = new Hono().post('/accounts/*', once({ replayCache: false }), async (c) => {
      runs++
      return dispatch(c, new Request(c.req.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: deposit(MAX + 1) }), options)
    })
    const key = newKey()
    const post = () => app.request('/accounts/zed/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' }, body: '{}' }, env)
    const first = await post()
    expect(first.status).toBe(413)
    const again = await post()
    expect({ status: again.status, replayed: again.headers.get('idempotent-replayed'), runs }).toEqual({ status: 413, replayed: null, runs: 2 })
    expect((await eu!.stats()).requests).toBe(0)
  })

  it.each([0, -1, 1.5, 100 * 1024 * 1024 + 1, '1024'])('maxBodyBytes %s is refused when the route is set up, naming the option', (bad) => {
    expect(() => proxy({ origins: [{ name: 'eu', url: 'https://eu.example' }], maxBodyBytes: bad as number })).toThrow(/maxBodyBytes/)
  })
})

/** An origin behind a service binding (a route once() does not relay): records the size of each body it is sent. */
function bound() {
  const seen: number[] = []
  const forms: unknown[] = []
  const origin = {
    name: 'svc',
    fetcher: {
      fetch: async (req: Request) => {
        const type = req.headers.get('content-type') ?? ''
        const bytes = await req.arrayBuffer()
        seen.push(bytes.byteLength)
        if (type.startsWith('multipart/')) forms.push(await new Response(bytes, { headers: { 'content-type': type } }).formData().then((f) => f.get('name'), (err: unknown) => String(err)))
        return new Response('{"ok":true}', { status: 201, headers: { 'content-type': 'application/json' } })
      },
    },
  }
  return { seen, forms, origin }
}

// Review s36 of 22cfd9d: proxy()'s bound read bodies once() had already read and bounded (a 2 MiB keyed write on a
// route with once({ maxBodyBytes: 4 MiB }) got proxy()'s 1 MiB 413), encoded a form read before once() a second time
// under the first encoding's Content-Type, and gave the key back after an earlier dispatch() of the request was sent.
describe('proxy()/dispatch() behind once() (review s36)', () => {
  it("a keyed write once() read is held to once()'s maxBodyBytes, not proxy()'s", async () => {
    const { seen, origin } = bound()
    const app = new Hono().post('/accounts/*', once({ maxBodyBytes: 4 * 1024 * 1024, replayCache: false }), proxy({ origins: [origin], strategy: 'failover' }))
    const res = await app.request('/accounts/zed/deposits', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"` }, body: new Uint8Array(2 * 1024 * 1024) }, env)
    expect({ status: res.status, seen }).toEqual({ status: 201, seen: [2 * 1024 * 1024] })
  })

  it.each(['keyed', 'keyless'] as const)('a form read before once() reaches the origin whole, its Content-Type naming its boundary (%s)', async (kind) => {
    const { forms, origin } = bound()
    const app = new Hono().post(
      '/upload',
      async (c, next) => {
        await c.req.formData() // the app's own check of the form, first
        await next()
      },
      once({ replayCache: false, required: false }),
      proxy({ origins: [origin], strategy: 'failover' }),
    )
    const form = new FormData()
    form.set('name', 'zed')
    const res = await app.request('/upload', { method: 'POST', headers: kind === 'keyed' ? { 'idempotency-key': `"${newKey()}"` } : {}, body: form }, env)
    expect({ status: res.status, forms }).toEqual({ status: 201, forms: ['zed'] })
  })

  it('a too-large dispatch() after an earlier one was sent keeps the key: the retry replays, the origin applied once', async () => {
    const { seen, origin } = bound()
    const options: ProxyOptions = { origins: [origin], strategy: 'failover', maxBodyBytes: MAX }
    let runs = 0
    const app = new Hono().post('/accounts/*', once({ replayCache: false }), async (c) => {
      runs++
      const first = await dispatch(c, new Request(c.req.url, { method: 'POST', body: 'charge' }), options)
      if (first.status !== 201) return first
      return dispatch(c, new Request(c.req.url, { method: 'POST', body: new Uint8Array(MAX + 1) }), options)
    })
    const key = newKey()
    const post = () => app.request('/accounts/zed/deposits', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{}' }, env)
    expect((await post()).status).toBe(413)
    const again = await post()
    expect({ status: again.status, replayed: again.headers.get('idempotent-replayed'), runs, sent: seen.length }).toEqual({ status: 413, replayed: 'true', runs: 1, sent: 1 })
  })

  it.each(['length', 'chunked'] as const)('a handler reads the body after dispatch(c) sent it (%s, no once())', async (framing) => {
    const { seen, origin } = bound()
    const app = new Hono().post('/accounts/*', async (c) => {
      const res = await dispatch(c, undefined, { origins: [origin], strategy: 'failover' })
      return c.json({ status: res.status, json: await c.req.json(), raw: await c.req.raw.text() })
    })
    const text = JSON.stringify({ amount: 5 })
    const bytes = new TextEncoder().encode(text)
    const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: framing === 'length' ? bytes : chunked(bytes, 4), ...(framing === 'chunked' ? { duplex: 'half' } : {}) }
    const res = await app.request('/accounts/zed/deposits', init as RequestInit, env)
    expect(await res.json()).toEqual({ status: 201, json: { amount: 5 }, raw: text })
    expect(seen).toEqual([bytes.byteLength])
  })
})
