/**
 * Forms and Hono's body cache around once(). A form body that middleware
 * before once() already read as `FormData` (`c.req.formData()`, or
 * `c.req.parseBody()` on older hono, e.g. 4.6): Hono keeps only the parsed
 * form, so the bytes once() fingerprints are made again from it. They must
 * come out the same for the same form, retry after retry, and still read as
 * that form behind once(). And a form read only behind once(), by the
 * handler, parses on every hono the peer range takes.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once } from '../../src/index.js'
import { newKey, readsBodyFirst } from '../helpers.js'

const form = (amount: string) => {
  const data = new FormData()
  data.append('amount', amount)
  data.append('memo', 'rent & food')
  return data
}

describe('a form body read as FormData by middleware before once()', () => {
  it.each([
    ['formData', 'multipart'],
    ['formData', 'urlencoded'],
    ['parseBody', 'multipart'],
    ['parseBody', 'urlencoded'],
  ] as const)('after c.req.%s() of a %s form: runs once, replays a retry (a new boundary), 422 for another form', async (read, encoding) => {
    let runs = 0
    const app = new Hono<{ Bindings: Cloudflare.Env }>()
    app.post(
      '/deposits',
      readsBodyFirst(read),
      once({ unscoped: 'shared' }),
      async (c) => {
        runs++
        const { amount, memo } = await c.req.parseBody()
        // The request as code that forwards it sees it: the bytes once() took, under a Content-Type that fits them.
        const forwarded = await c.req.raw.formData()
        return c.json({ amount, memo, forwarded: forwarded.get('memo'), run: runs }, 201)
      },
    )
    // Each send encodes the form again: a multipart one with a new random boundary, as a client's retry does.
    const send = (key: string, amount: string) =>
      app.request(
        '/deposits',
        { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: encoding === 'multipart' ? form(amount) : new URLSearchParams(form(amount) as unknown as Record<string, string>) },
        env,
      )
    const key = newKey()
    const first = await send(key, '7')
    expect(first.status).toBe(201)
    expect(await first.json()).toEqual({ amount: '7', memo: 'rent & food', forwarded: 'rent & food', run: 1 })
    const again = await send(key, '7')
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect((await send(key, '8')).status).toBe(422)
    expect(runs).toBe(1)
  })
})

describe('a form read behind once()', () => {
  // hono 4.6 makes FormData of the bytes once() cached without their Content-Type: "requires a Content-Type header".
  it.each([
    ['formData', 'multipart'],
    ['formData', 'urlencoded'],
    ['parseBody', 'multipart'],
    ['parseBody', 'urlencoded'],
  ] as const)('c.req.%s() of a %s form in the handler', async (read, encoding) => {
    const app = new Hono<{ Bindings: Cloudflare.Env }>()
    app.onError((err, c) => c.text(`onError: ${String(err)}`, 500))
    app.post('/deposits', once({ unscoped: 'shared' }), async (c) => {
      const fields = read === 'formData' ? Object.fromEntries(await c.req.formData()) : await c.req.parseBody()
      return c.json(fields, 201)
    })
    const body = encoding === 'multipart' ? form('7') : new URLSearchParams(form('7') as unknown as Record<string, string>)
    const res = await app.request('/deposits', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"` }, body }, env)
    expect(await res.text()).toBe(JSON.stringify({ amount: '7', memo: 'rent & food' }))
    expect(res.status).toBe(201)
  })
})

describe("a form whose Content-Type the handler sets on c.req.raw", () => {
  // A beacon (navigator.sendBeacon(url, 'a=1')) sends a form as text/plain; the handler says what it is before reading.
  // The form is parsed with the type the request has when it is read (review s37: it took the type once() saw).
  it.each(['formData', 'parseBody'] as const)('is parsed by c.req.%s() with that type', async (read) => {
    const app = new Hono<{ Bindings: Cloudflare.Env }>()
    app.onError((err, c) => c.text(`onError: ${String(err)}`, 500))
    app.post('/beacons', once({ unscoped: 'shared' }), async (c) => {
      c.req.raw.headers.set('content-type', 'application/x-www-form-urlencoded')
      const fields = read === 'formData' ? Object.fromEntries(await c.req.formData()) : await c.req.parseBody()
      return c.json(fields, 201)
    })
    const res = await app.request('/beacons', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'text/plain' }, body: 'a=1&b=two' }, env)
    expect(await res.text()).toBe(JSON.stringify({ a: '1', b: 'two' }))
    expect(res.status).toBe(201)
  })
})

describe('a form read before once() and encoded again', () => {
  it('goes on with a Content-Length that matches its new bytes', async () => {
    const app = new Hono<{ Bindings: Cloudflare.Env }>()
    app.post(
      '/len',
      readsBodyFirst('formData'),
      once({ unscoped: 'shared' }),
      async (c) => c.json({ declared: c.req.header('content-length'), actual: (await c.req.raw.arrayBuffer()).byteLength }),
    )
    // %20 comes back as + from URLSearchParams: the bytes are shorter than the client's.
    const body = 'memo=rent%20and%20food&amount=7'
    const res = await app.request(
      '/len',
      { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) }, body },
      env,
    )
    const { declared, actual } = (await res.json()) as { declared: string; actual: number }
    expect(actual).toBeLessThan(body.length)
    expect(declared).toBe(String(actual))
  })
})
