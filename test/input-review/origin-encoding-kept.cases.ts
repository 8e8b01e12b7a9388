import { env } from 'cloudflare:workers'
import fc from 'fast-check'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { badOrigin } from '../farm.js'

// Review s31 (input), finding 2: an origin's answer in a Content-Encoding the runtime's fetch does not decode (workerd
// decodes a lone gzip or br only) reached the client and the stored record as still-encoded bytes with the
// Content-Encoding header dropped (src/shared/send.ts: "the encoding `fetch` already undid"). Now send.ts decodes the
// codings fetch leaves and it can (deflate as zlib or raw, x-gzip, lists of them), keeps a coding it cannot decode
// with its bytes and its header, and fails an attempt whose bytes do not decode (as a body cut short).

async function twice(app: Hono, key = `"${crypto.randomUUID()}"`): Promise<Response[]> {
  const out: Response[] = []
  for (let i = 0; i < 2; i++) out.push(await app.request('/t', { method: 'POST', headers: { 'idempotency-key': key }, body: 'x' }, env))
  return out
}

describe("an origin's answer in an encoding the runtime did not decode", () => {
  it('is passed on with its Content-Encoding (or refused), never as identity bytes; the replay the same', async () => {
    const url = await badOrigin('deflate')
    const app = new Hono()
    app.post('/t', once({ unscoped: 'shared' }), proxy({ origins: [{ name: 'o', url }] }))
    const key = `"${crypto.randomUUID()}"`
    for (const attempt of ['first', 'replay']) {
      const res = await app.request('/t', { method: 'POST', headers: { 'idempotency-key': key }, body: 'x' }, env)
      expect(res.status, attempt).toBe(201)
      const bytes = new Uint8Array(await res.arrayBuffer())
      const encoding = res.headers.get('content-encoding')
      // What the body means, as a client reads it: decoded by its Content-Encoding, else taken as it is.
      const meaning = encoding === 'deflate' ? await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'))).text() : new TextDecoder().decode(bytes)
      expect(meaning, `${attempt}: content-encoding ${encoding}`).toBe('{"ok":"deflated"}')
    }
  })

  it.each([
    ['deflate', '{"ok":"deflated"}'],
    ['deflate-raw', '{"ok":"deflated"}'],
    ['x-gzip', '{"ok":"x-gzip"}'],
    ['deflate-gzip', '{"ok":"deflate-gzip"}'],
    ['gzip', '{"ok":"gzip"}'],
    ['gzip-upper', '{"ok":"gzip-upper"}'],
    ['br', '{"ok":"br"}'],
  ] as const)('a real origin answering in %s: the client and the replay get the body decoded, without Content-Encoding', async (mode, text) => {
    const app = new Hono()
    app.post('/t', once({ unscoped: 'shared' }), proxy({ origins: [{ name: 'o', url: await badOrigin(mode) }] }))
    for (const res of await twice(app)) {
      expect(res.status).toBe(201)
      expect(res.headers.get('content-encoding')).toBeNull()
      expect(await res.text()).toBe(text)
    }
  })

  it('a coding no runtime here decodes is kept: the bytes as the origin sent them, with their Content-Encoding, first and replayed', async () => {
    const app = new Hono()
    app.post('/t', once({ unscoped: 'shared' }), proxy({ origins: [{ name: 'o', url: await badOrigin('x-custom') }] }))
    for (const res of await twice(app)) {
      expect(res.status).toBe(201)
      expect(res.headers.get('content-encoding')).toBe('x-custom')
      expect(await res.text()).toBe('{"ok":"custom"}')
    }
  })

  it('bytes that do not decode as their Content-Encoding says are a failed attempt (as a body cut short), never stored', async () => {
    const app = new Hono()
    app.post('/t', once({ unscoped: 'shared' }), proxy({ origins: [{ name: 'o', url: await badOrigin('bad-deflate') }], maxAttempts: 1 }))
    const res = await app.request('/t', { method: 'POST', headers: { 'idempotency-key': `"${crypto.randomUUID()}"` }, body: 'x' }, env)
    expect(res.status).toBe(502)
    expect(((await res.json()) as { type: string }).type).toMatch(/origin-failed/)
  })

  it('an answer without bytes (a 204, the answer to a HEAD) is passed on whatever Content-Encoding it names', async () => {
    const origin = { name: 'o', fetcher: { fetch: async (req: Request) => new Response(null, { status: req.method === 'HEAD' ? 200 : 204, headers: { 'once-applied': '?1', 'content-encoding': 'deflate' } }) } }
    const app = new Hono()
    app.post('/t', once({ unscoped: 'shared' }), proxy({ origins: [origin] }))
    app.get('/t', proxy({ origins: [origin] }))
    for (const res of await twice(app)) expect(res.status).toBe(204)
    const head = await app.request('/t', { method: 'HEAD' }, env)
    expect(head.status).toBe(200)
  })

  it('any body in any coding from a service binding: the client reads the same body, first and replayed', async () => {
    const encode = async (bytes: Uint8Array, format: 'deflate' | 'deflate-raw' | 'gzip') => new Uint8Array(await new Response(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream(format))).arrayBuffer())
    // Lone gzip and br (lower case) are the runtime's to decode on a binding's answer (a plain object fetcher here would skip that).
    const codings = ['identity', '', 'deflate', 'deflate-raw', 'x-gzip', 'GZIP', 'deflate, x-gzip', 'x-gzip, deflate', 'deflate, gzip', 'Deflate', ' deflate ', 'x-custom', 'zstd', 'deflate, zstd', 'compress'] as const
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...codings), async (plain, coding) => {
        let bytes: Uint8Array = plain
        let header: string = coding
        if (coding === 'deflate-raw') [bytes, header] = [await encode(plain, 'deflate-raw'), 'deflate']
        else {
          for (const c of coding.split(',').map((x) => x.trim().toLowerCase())) {
            if (c === 'deflate') bytes = await encode(bytes, 'deflate')
            if (c === 'x-gzip' || c === 'gzip') bytes = await encode(bytes, 'gzip')
          }
        }
        const origin = { name: 'o', fetcher: { fetch: async () => new Response(bytes as Uint8Array<ArrayBuffer>, { status: 201, headers: { 'once-applied': '?1', ...(header === '' ? {} : { 'content-encoding': header }) } }) } }
        const app = new Hono()
        app.post('/t', once({ unscoped: 'shared' }), proxy({ origins: [origin] }))
        const [first, replay] = await twice(app)
        const kept = ['x-custom', 'zstd', 'deflate, zstd', 'compress'].includes(coding)
        for (const res of [first!, replay!]) {
          expect(res.status).toBe(201)
          expect(res.headers.get('content-encoding')).toBe(kept ? coding : null)
          expect(new Uint8Array(await res.arrayBuffer())).toEqual(kept ? bytes : plain)
        }
      }),
      { numRuns: 60 },
    )
  })
})
