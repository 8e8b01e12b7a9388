import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, proxy } from '../../src/index.js'
import { badOrigin } from '../farm.js'

// Review s31 (input): an origin's answer in a Content-Encoding the runtime's fetch does not decode (deflate here;
// workerd decodes gzip and br only) reaches the client and the stored record as the still-encoded bytes, with the
// Content-Encoding header dropped (src/shared/send.ts NOT_RETURNED: "the encoding `fetch` already undid"). The client
// and every replay get compressed bytes labelled application/json. (Uses the farm's new 'deflate' bad-origin mode,
// added to test/origin-farm.ts for this review: an HTTP/1.1 201 with content-encoding: deflate and once-applied: ?1.)
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
})
