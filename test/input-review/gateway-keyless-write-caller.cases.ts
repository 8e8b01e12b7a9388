import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { buildGateway, parseGatewayConfig } from '../../src/gateway.js'
import { ownOrigin } from './own-origin.js'

// Review s31 (input) finding 4: DESIGN §6: a forwarded write carries no Authorization or Cookie; the origin reads the
// caller from Once-Principal. A keyless write (keys.required false) used to reach the origin with neither: once()
// computed no scope for it. once() now notes the scope of a keyless write for proxy() (setCallerScope).
describe('a keyless write through the gateway still says who made it', () => {
  it('carries the Once-Principal its keyed twin carries (or the caller\'s Authorization)', async () => {
    const { app } = buildGateway(parseGatewayConfig({ origins: [{ name: 'eu', url: 'https://eu.keyless-caller.test' }], routes: [{ path: '/h/*', strategy: 'failover' }], keys: { required: false }, signing: 'off' }))
    const sent: Headers[] = []
    const realFetch = globalThis.fetch
    globalThis.fetch = ownOrigin(realFetch, 'keyless-caller', (req) => (sent.push(req.headers), new Response('ok', { status: 201 })))
    try {
      for (const key of [`"${crypto.randomUUID()}"`, undefined]) {
        const res = await app.request('/h/x', { method: 'POST', headers: { authorization: 'Bearer caller-1', ...(key ? { 'idempotency-key': key } : {}) }, body: 'x' }, { ONCE: env.ONCE })
        expect(res.status).toBe(201)
      }
    } finally {
      globalThis.fetch = realFetch
    }
    const [keyed, keyless] = sent
    expect(keyed!.get('once-principal')).toMatch(/^scope="[0-9a-f]{64}"$/)
    const caller = keyless!.get('once-principal') ?? keyless!.get('authorization')
    expect(caller, 'what the origin is told of the keyless write\'s caller').not.toBeNull()
  })
})

describe('a keyless write through once({ required: false }) + proxy()', () => {
  it("carries its caller's scope from the scope option, and none when the option throws (its keyed writes say so)", async () => {
    const { Hono } = await import('hono')
    const { once, proxy } = await import('../../src/index.js')
    const sent: Headers[] = []
    const realFetch = globalThis.fetch
    globalThis.fetch = ownOrigin(realFetch, 'keyless-caller', (req) => (sent.push(req.headers), new Response('ok', { status: 201 })))
    try {
      for (const scope of [() => 'tenant-7', (): string => { throw new Error('no tenant') }]) {
        const app = new Hono()
        app.post('/h/*', once({ required: false, scope }), proxy({ origins: [{ name: 'eu', url: 'https://eu.keyless-caller.test' }], strategy: 'failover' }))
        expect((await app.request('/h/x', { method: 'POST', body: 'x' }, { ONCE: env.ONCE })).status).toBe(201)
      }
    } finally {
      globalThis.fetch = realFetch
    }
    expect(sent.map((h) => h.get('once-principal'))).toEqual(['scope="tenant-7"', null])
  })
})
