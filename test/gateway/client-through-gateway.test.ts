import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import gateway from '../../src/gateway.js'
import { createOnceFetch, onceInfo, RetryBudget } from '../../src/client/index.js'
import { startOrigins } from '../farm.js'

const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext

/**
 * hono-once/client in front of the gateway: the client's attempts time out while the gateway's write is still
 * running at a slow origin; every attempt carries the one key, the duplicates wait for the original, and the call
 * ends with the stored answer: one effect.
 */
describe('the client through the gateway', () => {
  it.each([['failover', {}], ['replicate', { domain: 'param:id' }]] as const)('%s: attempts cut by the client timeout apply the deposit once', async (strategy, extra) => {
    const [eu] = await startOrigins(['eu'], { latencyMs: 700 })
    const config = { origins: [{ name: 'eu', url: eu!.url }], routes: [{ path: '/accounts/:id/*', methods: ['POST'], strategy, ...extra }] }
    const bindings = { ONCE: env.ONCE, ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET, ONCE_CONFIG: JSON.stringify(config) }
    const onceFetch = createOnceFetch({ timeoutMs: 300, budget: new RetryBudget(), fetch: (r) => gateway.fetch!(r as Request<unknown, IncomingRequestCfProperties>, bindings as never, ctx) })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const res = await onceFetch(`http://gateway.test/accounts/${account}/deposits`, { method: 'POST', headers: { authorization: 'Bearer t', 'content-type': 'application/json' }, body: '{"amount":100}' })
    expect(res.status).toBe(201)
    expect(onceInfo(res)).toMatchObject({ replayed: true })
    expect(onceInfo(res)!.attempts).toBeGreaterThan(1)
    expect((await eu!.stats()).balances[account]).toBe(100)
  })
})
