import { env } from 'cloudflare:workers'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { buildGateway, parseGatewayConfig } from '../../src/gateway.js'
import { ownOrigin } from './own-origin.js'
import { chunked } from '../helpers.js'

// Review s31 (input), finding 1: docs/gateway.md, keys.maxBodyBytes: "largest request body (413 above ...)". With
// keys.required false, a write without Idempotency-Key passed once() untouched and proxy() read its whole body into
// memory with no limit (bounded only by Cloudflare's request limit, past a Worker's 128 MB once cloned and copied).
// Now the gateway holds a keyless write to keys.maxBodyBytes through proxy()'s own maxBodyBytes (Content-Length and chunked bodies),
// answering the 413 problem a keyed write gets from once().
const MAX = 1024

function gateway() {
  const config = parseGatewayConfig({
    origins: [{ name: 'eu', url: 'https://eu.keyless-limit.test' }],
    routes: [{ path: '/uploads/*', methods: ['POST', 'PUT'], strategy: 'failover' }],
    keys: { required: false, maxBodyBytes: MAX },
    signing: 'off',
  })
  return buildGateway(config).app
}

/** Runs `body` with globalThis.fetch (the gateway's way to its origins) recording the bodies the origin is sent. */
async function withOrigin<T>(body: (received: Uint8Array[]) => Promise<T>): Promise<T> {
  const received: Uint8Array[] = []
  const realFetch = globalThis.fetch
  globalThis.fetch = ownOrigin(realFetch, 'keyless-limit', async (req) => {
    received.push(new Uint8Array(await req.arrayBuffer()))
    return new Response('stored', { status: 201 })
  })
  try {
    return await body(received)
  } finally {
    globalThis.fetch = realFetch
  }
}

describe('the gateway holds a keyless write to keys.maxBodyBytes too', () => {
  it('a 256 KiB keyless POST on a failover route with keys.required false and maxBodyBytes 1024 is a 413, not forwarded', async () => {
    const app = gateway()
    const body = new Uint8Array(256 * 1024)
    await withOrigin(async (received) => {
      const keyed = await app.request('/uploads/a', { method: 'POST', headers: { authorization: 'Bearer c', 'idempotency-key': `"${crypto.randomUUID()}"` }, body }, { ONCE: env.ONCE })
      expect(keyed.status).toBe(413) // the limit as documented, for a keyed write
      const keyless = await app.request('/uploads/a', { method: 'POST', headers: { authorization: 'Bearer c' }, body }, { ONCE: env.ONCE })
      expect(received, 'bytes the origin was sent').toEqual([])
      expect(keyless.status).toBe(413)
      // The same problem+json as the keyed write's.
      expect(keyless.headers.get('content-type')).toBe(keyed.headers.get('content-type'))
      const [p, q] = [(await keyless.json()) as Record<string, unknown>, (await keyed.json()) as Record<string, unknown>]
      expect({ type: p.type, title: p.title, status: p.status, detail: p.detail, retryable: p.retryable }).toEqual({ type: q.type, title: q.title, status: q.status, detail: q.detail, retryable: q.retryable })
    })
  })

  it('a chunked keyless body over the limit is a 413 too; at the limit, it is forwarded whole', async () => {
    const app = gateway()
    await withOrigin(async (received) => {
      const over = await app.request('/uploads/a', { method: 'PUT', headers: { authorization: 'Bearer c' }, body: chunked(new Uint8Array(64 * 1024).fill(7), 1000), duplex: 'half' } as RequestInit, { ONCE: env.ONCE })
      expect(over.status).toBe(413)
      expect(((await over.json()) as { type: string }).type).toMatch(/body-too-large/)
      expect(received).toEqual([])
      const at = new Uint8Array(MAX).fill(9)
      const ok = await app.request('/uploads/a', { method: 'PUT', headers: { authorization: 'Bearer c' }, body: chunked(at, 100), duplex: 'half' } as RequestInit, { ONCE: env.ONCE })
      expect(ok.status).toBe(201)
      expect(received).toEqual([at])
    })
  })

  it('any keyless body, sized around the limit, with or without Content-Length: a 413 exactly when it is over, else the origin gets it byte for byte', async () => {
    const app = gateway()
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 3 * MAX }), fc.constantFrom('length', 'chunked'), fc.integer({ min: 1, max: 700 }), fc.constantFrom('POST', 'PUT'), async (size, framing, chunk, method) => {
        const bytes = new Uint8Array(size).map((_, i) => (i * 31 + size) & 0xff)
        await withOrigin(async (received) => {
          const body = framing === 'length' ? bytes : chunked(bytes, chunk)
          const res = await app.request('/uploads/a', { method, headers: { authorization: 'Bearer c' }, body, ...(framing === 'chunked' ? { duplex: 'half' } : {}) } as RequestInit, { ONCE: env.ONCE })
          if (size > MAX) {
            expect(res.status).toBe(413)
            expect(received).toEqual([])
          } else {
            expect(res.status).toBe(201)
            expect(received).toEqual([bytes])
          }
        })
      }),
      { numRuns: 60 },
    )
  })
})
