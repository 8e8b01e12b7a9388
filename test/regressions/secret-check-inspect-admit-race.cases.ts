// Review s32 (last). 886c158 splits the "may this key be admitted while the signing secret is unusable?" decision
// over two RPCs: inspect(lookup) in the Worker (src/middleware/admit.ts:120-125, judged by the record's expiresAt
// against the Worker's clock), then admit() in the object, which knows nothing of the secret. A record that expires
// between the two (or any record the object treats as free at admit time) is admitted as a new request: on an ordered
// route that is a new slot in the domain's log, stored while the secret is unusable, which the same commit's comment
// says must never happen ("an ordered slot, once admitted, is never taken back"). Here the admit RPC is delayed
// 400 ms (a slow RPC, a retry of an overloaded object), which is all it takes.
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import type { StableAreaApi } from '../../src/durable/types.js'
import { once, proxy } from '../../src/index.js'
import { startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { depositUnder } from './signing-secret.js'
import { list, stateOf } from '../origin-adapter/domains.js'

describe('a retry of a committed ordered key that expires between inspect and admit, secret unset', () => {
  it('gets no new slot in its domain log', async () => {
    const origins = await startOrigins(['eu', 'us'])
    let slowAdmit = false
    const ns = {
      idFromName: (name: string) => env.ONCE.idFromName(name),
      get: (id: DurableObjectId) => {
        const real = env.ONCE.get(id) as unknown as StableAreaApi
        return new Proxy(real, {
          get(target, prop) {
            if (prop !== 'admit') return Reflect.get(target, prop)
            return async (r: Parameters<StableAreaApi['admit']>[0]) => {
              if (slowAdmit) await scheduler.wait(400)
              return real.admit(r)
            }
          },
        })
      },
    } as unknown as typeof env.ONCE
    const app = new Hono()
    app.use('/accounts/*', once({ leaseMs: 3000, ttlSeconds: 1, replayCache: false, namespace: () => ns, domain: (c) => c.req.path.split('/')[2]! }))
    app.post('/accounts/*', proxy({ origins: list(origins), strategy: 'replicate', secret: { env: 'TEST_SIGNING_SECRET' }, timeoutMs: 1000, deadlineMs: 2000 }))
    const key = newKey()
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const send = depositUnder(app, account, key)
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const started = Date.now()
      expect((await send(true)).status).toBe(201)
      // Retry near the end of the 1 s TTL: inspect still sees the committed record, the delayed admit does not.
      await scheduler.wait(Math.max(0, 800 - (Date.now() - started)))
      slowAdmit = true
      const retry = await send(false)
      const body = await retry.text()
      const state = await stateOf(account)
      expect.soft(state?.head, `${retry.status} ${body}`).toBe(1)
    } finally {
      warn.mockRestore()
      error.mockRestore()
    }
  })
})
