import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import gateway from '../../src/gateway.js'
import { eventually, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'

const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext
const TOKEN = 'status-token-for-tests'
const call = (config: unknown, path: string, init: RequestInit = {}) =>
  gateway.fetch!(new Request(`http://gateway.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>, { ONCE: env.ONCE, ONCE_SIGNING_SECRET: env.TEST_SIGNING_SECRET, ONCE_STATUS_TOKEN: TOKEN, ONCE_CONFIG: JSON.stringify(config) } as never, ctx)

/** Origin names may be Object.prototype's (`__proto__`, `constructor`): replicated writes, catch-up and the status page work. */
describe('the gateway: origin names', () => {
  it.each([['__proto__', 'constructor'], ['hasOwnProperty', 'toString']])('replicas named %s and %s: writes apply in both, the status page answers', async (a, b) => {
    const [o1, o2] = await startOrigins([a, b])
    const config = { origins: [{ name: a, url: o1!.url }, { name: b, url: o2!.url }], routes: [{ path: '/accounts/:id/*', methods: ['POST'], strategy: 'replicate', domain: 'param:id', ackQuorum: 'all' }] }
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    for (const amount of [100, 50]) {
      const res = await call(config, `/accounts/${account}/deposits`, { method: 'POST', headers: { authorization: 'Bearer t', 'idempotency-key': `"${newKey()}"`, 'content-type': 'application/json' }, body: JSON.stringify({ amount }) })
      expect(res.status, await res.clone().text()).toBe(201)
    }
    await eventually(async () => [(await o1!.stats()).balances[account], (await o2!.stats()).balances[account]], (v) => v[0] === 150 && v[1] === 150)
    const status = await call(config, '/__once/status', { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(status.status, await status.clone().text()).toBe(200)
    const s = (await status.json()) as { origins: { name: string; state: string }[] }
    expect(s.origins.map((o) => o.name)).toEqual([a, b])
  })
})
