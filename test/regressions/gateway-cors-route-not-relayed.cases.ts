/**
 * The gateway's CORS wrapper around proxy() is seen as proxy() (review s31 D3): with a `cors` block each route's
 * proxy() is wrapped (withoutOriginCors), and once() took the wrapper for a handler of its own: the route's writes
 * lost the alarm's resend, and an ordered route (replicate + domain) answered every write 500 misconfigured.
 */
import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import gateway from '../../src/gateway.js'
import { startOrigins } from '../farm.js'
import { newKey, relayRowsWhileInFlight } from '../helpers.js'

const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext
const SHOP = 'https://shop.example'
const call = (config: unknown, path: string, init: RequestInit) =>
  gateway.fetch!(new Request(`http://gateway.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>, { ONCE: env.ONCE, ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET, ONCE_CONFIG: JSON.stringify(config) }, ctx)

describe('the gateway with a cors block', () => {
  for (const cors of [undefined, { origins: [SHOP] }]) {
    it(`an ordered route (replicate, domain) takes a deposit ${cors ? 'with' : 'without'} cors`, async () => {
      const [eu, us] = await startOrigins(['eu', 'us'], { secrets: { ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET } })
      const config = {
        origins: [{ name: 'eu', url: eu!.url }, { name: 'us', url: us!.url }],
        routes: [{ path: '/accounts/:id/*', methods: ['POST'], strategy: 'replicate', domain: 'param:id', timeoutMs: 1000, deadlineMs: 3000 }],
        ...(cors ? { cors } : {}),
      }
      const account = `acct-${crypto.randomUUID().slice(0, 8)}`
      const res = await call(config, `/accounts/${account}/deposits`, {
        method: 'POST',
        headers: { origin: SHOP, authorization: 'Bearer t', 'content-type': 'application/json', 'idempotency-key': `"${newKey()}"` },
        body: '{"amount":100}',
      })
      const text = await res.text()
      console.log(cors ? 'with cors:' : 'without cors:', res.status, text.slice(0, 300))
      expect(res.status).toBe(201)
    })
  }
})

describe('the gateway with a cors block: what the alarm could resend', () => {
  for (const cors of [undefined, { origins: [SHOP] }]) {
    it(`a write in flight has its relay stored (${cors ? 'with' : 'without'} cors)`, async () => {
      const [eu] = await startOrigins(['eu'], { secrets: { ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET } })
      const config = {
        origins: [{ name: 'eu', url: eu!.url }],
        routes: [{ path: '/accounts/*', methods: ['POST'], timeoutMs: 1000, deadlineMs: 3000 }],
        keys: { scope: 'none' },
        ...(cors ? { cors } : {}),
      }
      await eu!.faults({ hang: true }) // the send is out when the Worker is evicted (a deploy)
      const key = newKey()
      const account = `acct-${crypto.randomUUID().slice(0, 8)}`
      const pending = call(config, `/accounts/${account}/deposits`, {
        method: 'POST',
        headers: { origin: SHOP, authorization: 'Bearer t', 'content-type': 'application/json', 'idempotency-key': `"${key}"` },
        body: '{"amount":100}',
      })
      const rows = await relayRowsWhileInFlight(key)
      await eu!.faults({ hang: false })
      await (await pending).body?.cancel()
      console.log(cors ? 'with cors:' : 'without cors:', 'relay rows while in flight:', JSON.stringify(rows))
      expect(rows).toEqual([{ state: 'processing' }])
    })
  }
})
