/**
 * Review s31 (docs) F5–F8: statements in the pages that disagreed with the code. Each test checks the behaviour and
 * that the page now says it: F5 which proxy() routes are relayed (url origins; service bindings are not, so no
 * 8 KiB header budget); F6 what an overloaded object answers; F7 the schema's step count; F8 that a replay carries
 * no Server-Timing. The pages are read by a node test beside this one (docs-say-what-code-does.node.test.ts).
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, PROBLEM_BASE, proxy } from '../../src/index.js'
import { rpcProblem } from '../../src/middleware/rpc.js'
import { newKey } from '../helpers.js'

const fetcherOf = (app: Hono) => ({ fetch: (r: Request) => app.fetch(r) }) as unknown as Fetcher
const post = (app: Hono, path: string, key: string, headers: Record<string, string> = {}) =>
  app.request(path, { method: 'POST', headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json', ...headers }, body: '{}' }, env)

describe('F5: only a proxy() route with a url origin is relayed (dispatch.md, errors.md)', () => {
  it('a route whose origins are all service bindings forwards 9 KB of headers: no relay, no 8 KiB budget', async () => {
    let sent = 0
    const origin = new Hono().post('*', (c) => (sent++, c.text('ok', 201)))
    const app = new Hono()
    app.post('/big', once(), proxy({ origins: [{ name: 'eu', fetcher: fetcherOf(origin) }] }))
    const res = await post(app, '/big', newKey(), { 'x-big': 'a'.repeat(9000) })
    expect({ status: res.status, sent }).toEqual({ status: 201, sent: 1 })
  })
})

describe('F6: gateway.md: past an object\'s rate, callers get 503 stable-area-unavailable', () => {
  it('an overloaded object answers 503 stable-area-unavailable with Retry-After 5–10', async () => {
    const res = rpcProblem(Object.assign(new Error('Durable Object is overloaded.'), { overloaded: true }), '/accounts/a', 'k-1')
    expect(res.status).toBe(503)
    expect(((await res.json()) as { type: string }).type).toBe(`${PROBLEM_BASE}stable-area-unavailable`)
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(5)
    expect(Number(res.headers.get('retry-after'))).toBeLessThanOrEqual(10)
  })
})

describe('F8: dispatch.md: a replay carries the stored Once-Origin and no Server-Timing', () => {
  it('the first answer has Server-Timing, its replay Once-Origin only', async () => {
    const origin = new Hono().post('*', (c) => c.text('ok', 201))
    const app = new Hono()
    app.post('/p', once(), proxy({ origins: [{ name: 'eu', fetcher: fetcherOf(origin) }] }))
    const key = newKey()
    const first = await post(app, '/p', key)
    const replay = await post(app, '/p', key)
    expect(first.headers.get('server-timing')).toMatch(/^eu;desc="#1 201"/)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect(replay.headers.get('once-origin')).toBe('eu')
    expect(replay.headers.get('server-timing')).toBeNull()
  })
})
