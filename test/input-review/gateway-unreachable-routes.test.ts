import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { buildGateway, parseGatewayConfig } from '../../src/gateway.js'

// Review s31 (input): the config check refuses routes that can never serve a request (a stray brace: "literal text
// that no request path holds ... a route that never matches"; HEAD without GET) and options no send reads. Two
// neighbours of that rule get through, and the operator finds out in production.
const eu = { name: 'eu', url: 'https://eu.example' }
const us = { name: 'us', url: 'https://us.example' }

describe('a gateway route no request can reach is refused at start-up, naming it', () => {
  it('a path with "?" or "#" outside a :param? (a request path never holds either: the route never matches)', async () => {
    for (const path of ['/orders?status=open', '/orders#recent', '/orders?']) {
      // What the gateway's router does with it: nothing ever matches.
      const app = new Hono().get(path, (c) => c.text('hit'))
      for (const url of ['/orders?status=open', '/orders', '/orders%3Fstatus=open', '/orders%23recent']) expect((await app.request(url)).status).toBe(404)
      expect(() => parseGatewayConfig({ origins: [eu], routes: [{ path, methods: ['GET'] }] }), path).toThrow(/routes\.0\.path/)
    }
  })

  it('a route whose path and methods an earlier route already serves ("first match wins": it is never used)', async () => {
    // An operator moves the writes of /accounts/* to a second origin set, adding the route after the old one.
    const config = {
      origins: [eu, us],
      routes: [
        { path: '/accounts/*', methods: ['POST'], strategy: 'failover', origins: ['eu'] },
        { path: '/accounts/*', methods: ['POST'], strategy: 'failover', origins: ['us'] },
      ],
      signing: 'off',
    }
    // The second route is dead: every POST goes to routes.0's origin.
    const { app } = buildGateway(parseGatewayConfig(JSON.parse(JSON.stringify(config))))
    const sent: string[] = []
    const realFetch = globalThis.fetch
    globalThis.fetch = (async (req: Request) => {
      sent.push(new URL(req.url).host)
      return new Response('ok', { status: 201 })
    }) as typeof fetch
    try {
      const res = await app.request('/accounts/a', { method: 'POST', headers: { authorization: 'Bearer c', 'idempotency-key': `"${crypto.randomUUID()}"` }, body: 'x' }, { ONCE: env.ONCE })
      expect(res.status).toBe(201)
    } finally {
      globalThis.fetch = realFetch
    }
    expect(sent).toEqual(['eu.example'])
    expect(() => parseGatewayConfig(config)).toThrow(/routes\.1/)
  })
})
