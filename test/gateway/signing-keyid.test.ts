import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import gateway, { parseGatewayConfig } from '../../src/gateway.js'
import { startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'

const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext

/** `signing.keyid` takes any printable ASCII: a keyid with a quote, a backslash or a space verifies at a receiver given the same keyid. */
describe('the gateway: signing.keyid', () => {
  it.each(['2026-11', 'key "a"', 'a\\b', 'with space'])('keyid %j: accepted at start-up and a signed write is applied', async (keyid) => {
    const [eu] = await startOrigins(['eu'], { secrets: { [keyid]: env.TEST_SIGNING_SECRET } })
    const config = { origins: [{ name: 'eu', url: eu!.url }], routes: [{ path: '/accounts/*', methods: ['POST'] }], signing: { keyid } }
    expect(() => parseGatewayConfig(config)).not.toThrow()
    const res = await gateway.fetch!(
      new Request(`http://gateway.test/accounts/acct-${crypto.randomUUID().slice(0, 8)}/deposits`, { method: 'POST', headers: { authorization: 'Bearer t', 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: '{"amount":1}' }) as Request<unknown, IncomingRequestCfProperties>,
      { ONCE: env.ONCE, ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET, ONCE_CONFIG: JSON.stringify(config) } as never,
      ctx,
    )
    const text = await res.text()
    expect(res.status, text).toBe(201)
  })
})
