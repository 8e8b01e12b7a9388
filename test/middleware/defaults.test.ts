import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { createOnceFetch, onceInfo } from '../../src/client/index.js'
import { once } from '../../src/index.js'
import { newKey, until } from '../helpers.js'

describe('server and client defaults fit together (issue 11.9)', () => {
  it("a duplicate waiting on a slow original gets the server's 409 before the client's attempt times out, retries, and replays", async () => {
    let runs = 0
    let finish!: () => void
    const slow = new Promise<void>((r) => (finish = r))
    const app = new Hono().post('/pay', once(), async (c) => {
      runs++
      await slow
      return c.text('paid', 201)
    })
    const transport = async (req: Request): Promise<Response> => app.request(req, undefined, env)
    const key = newKey()
    const headers = { 'idempotency-key': `"${key}"` }
    const original = app.request('/pay', { method: 'POST', headers, body: '{}' }, env)
    await until(key, (r) => r?.state === 'in_flight')
    // Both sides at their defaults: the server waits waitMs (5 s), the client allows timeoutMs (10 s) per attempt.
    const started = Date.now()
    const duplicate = createOnceFetch({ fetch: transport, budget: false })('http://localhost/pay', { method: 'POST', headers, body: '{}' })
    setTimeout(finish, 6000) // the original ends after the first wait, before a client timeout
    const res = await duplicate
    expect((await original).status).toBe(201)
    expect(res.status).toBe(201)
    expect(onceInfo(res)).toMatchObject({ attempts: 2, replayed: true })
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(runs).toBe(1)
  }, 20_000)
})
