import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { buildGateway, parseGatewayConfig } from '../../src/gateway.js'

// Review s31 (input): docs/gateway.md, keys.maxBodyBytes: "largest request body (413 above; at most 1 MiB ...)".
// With keys.required false, a write without Idempotency-Key passes once() untouched (it reads no body), and proxy()
// reads the whole body into memory (dispatch.ts forward: `await req.clone().arrayBuffer()`) with no limit at all: the
// client's body size is bounded only by Cloudflare's request limit (100 MB and up), which is past a Worker's 128 MB
// once cloned and copied. The keyed write of the same size is a 413.
describe('the gateway holds a keyless write to keys.maxBodyBytes too', () => {
  it('a 256 KiB keyless POST on a failover route with keys.required false and maxBodyBytes 1024 is a 413, not forwarded', async () => {
    const config = parseGatewayConfig({
      origins: [{ name: 'eu', url: 'https://eu.example' }],
      routes: [{ path: '/uploads/*', methods: ['POST'], strategy: 'failover' }],
      keys: { required: false, maxBodyBytes: 1024 },
      signing: 'off',
    })
    const { app } = buildGateway(config)
    const received: number[] = []
    const realFetch = globalThis.fetch
    globalThis.fetch = (async (req: Request) => {
      received.push((await req.arrayBuffer()).byteLength)
      return new Response('stored', { status: 201 })
    }) as typeof fetch
    const body = new Uint8Array(256 * 1024)
    try {
      const keyed = await app.request('/uploads/a', { method: 'POST', headers: { authorization: 'Bearer c', 'idempotency-key': `"${crypto.randomUUID()}"` }, body }, { ONCE: env.ONCE })
      expect(keyed.status).toBe(413) // the limit as documented, for a keyed write
      const keyless = await app.request('/uploads/a', { method: 'POST', headers: { authorization: 'Bearer c' }, body }, { ONCE: env.ONCE })
      expect(received, 'bytes the origin was sent').toEqual([])
      expect(keyless.status).toBe(413)
    } finally {
      globalThis.fetch = realFetch
    }
  })
})
