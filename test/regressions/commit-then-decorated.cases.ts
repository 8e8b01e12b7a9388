/**
 * Review s31 (diff), D7: since 3e2d255 CommitPoint.finish answers the committed reply whenever the route's final
 * answer does not store exactly as it (status, stored headers, bytes). A middleware between once() and the handler
 * that decorates the answer after next() (hono/secure-headers, a request-id or trace header, c.header() in an app
 * middleware) makes the route's answer differ from the reply the handler committed inside itself, so the client gets
 * the committed reply instead, without those headers, and the log says the route "answered 201 after committing
 * another reply (201)". The docs' own commit(res) example (docs/once.md) returns the very res it committed.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { secureHeaders } from 'hono/secure-headers'
import { describe, expect, it, vi } from 'vitest'
import { once } from '../../src/index.js'
import { newKey } from '../helpers.js'

describe('commit(res), then a middleware inside once() decorates the answer', () => {
  it("the client gets the route's answer with the middleware's headers (same status and body as committed)", async () => {
    const warn = vi.spyOn(console, 'warn')
    const app = new Hono()
    app.post(
      '/orders',
      once({ replayCache: false }),
      secureHeaders(),
      async (c, next) => {
        await next()
        c.header('x-trace-id', 'trace-1')
      },
      async (c) => {
        const res = c.json({ id: 'o-1' }, 201)
        await c.var.once.commit(res) // docs/once.md's example
        return res
      },
    )
    const res = await app.request('/orders', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{}' }, env)
    const warned = warn.mock.calls.map((a) => String(a[0])).filter((m) => m.includes('after committing another reply'))
    warn.mockRestore()
    console.log('answer:', res.status, 'x-trace-id:', res.headers.get('x-trace-id'), 'x-frame-options:', res.headers.get('x-frame-options'), '| warned:', warned)
    expect({ status: res.status, trace: res.headers.get('x-trace-id'), frame: res.headers.get('x-frame-options') }).toEqual({ status: 201, trace: 'trace-1', frame: 'SAMEORIGIN' })
  })
})
