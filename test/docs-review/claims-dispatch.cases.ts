/**
 * Review s31 (docs): claims of docs/dispatch.md about failover, the client's problem and the answer's headers.
 */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { once, PROBLEM_BASE, proxy } from '../../src/index.js'
import { newKey } from '../helpers.js'

const fetcherOf = (app: Hono) => ({ fetch: (r: Request) => app.fetch(r) }) as unknown as Fetcher

describe('dispatch.md: failover', () => {
  it('503, 503 from eu then 201 from us: one request id, Once-Attempt 1, 2, 3; Server-Timing one entry per attempt; Once-Origin names the winner', async () => {
    const seen: { origin: string; id: string | null; attempt: string | null }[] = []
    const eu = new Hono().post('*', (c) => (seen.push({ origin: 'eu', id: c.req.header('once-request-id') ?? null, attempt: c.req.header('once-attempt') ?? null }), c.text('busy', 503)))
    const us = new Hono().post('*', (c) => (seen.push({ origin: 'us', id: c.req.header('once-request-id') ?? null, attempt: c.req.header('once-attempt') ?? null }), c.text('ok', 201)))
    const app = new Hono()
    app.post('/f', once(), proxy({ origins: [{ name: 'eu', fetcher: fetcherOf(eu) }, { name: 'us', fetcher: fetcherOf(us) }], strategy: 'failover', breaker: { failures: 100, cooldownMs: 1000 } }))
    const res = await app.request('/f', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"` }, body: '{}' }, env)
    expect(res.status).toBe(201)
    expect(res.headers.get('once-origin')).toBe('us')
    expect(new Set(seen.map((s) => s.id)).size).toBe(1)
    expect(seen.map((s) => s.attempt)).toEqual(seen.map((_, i) => String(i + 1)))
    expect(res.headers.get('server-timing')?.split(', ').length).toBe(seen.length)
    expect(res.headers.get('server-timing')).toMatch(/^eu;desc="#1 503";dur=\d+/)
  })

  it('every origin 503: a retryable 502 origin-failed with Retry-After: 1, its detail naming each origin once with its count; nothing committed, the retry runs again', async () => {
    let sends = 0
    const down = new Hono().post('*', (c) => (sends++, c.text('busy', 503)))
    const app = new Hono()
    app.post('/d', once(), proxy({ origins: [{ name: 'eu', fetcher: fetcherOf(down) }, { name: 'us', fetcher: fetcherOf(down) }], strategy: 'failover', maxAttempts: 3, breaker: { failures: 100, cooldownMs: 1000 } }))
    const key = newKey()
    const res = await app.request('/d', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{}' }, env)
    expect(res.status).toBe(502)
    expect(res.headers.get('retry-after')).toBe('1')
    const body = (await res.json()) as { type: string; retryable: boolean; detail: string }
    expect(body).toMatchObject({ type: `${PROBLEM_BASE}origin-failed`, retryable: true })
    expect(body.detail).toMatch(/eu: 503 ×2; us: 503/)
    const before = sends
    const again = await app.request('/d', { method: 'POST', headers: { 'idempotency-key': `"${key}"` }, body: '{}' }, env)
    expect(again.status).toBe(502)
    expect(sends).toBeGreaterThan(before)
  })

  it('a 3xx is an answer, not followed', async () => {
    const origin = new Hono().post('*', (c) => c.redirect('https://elsewhere.example/x', 302))
    const app = new Hono()
    app.post('/r', once(), proxy({ origins: [{ name: 'eu', fetcher: fetcherOf(origin) }] }))
    const res = await app.request('/r', { method: 'POST', headers: { 'idempotency-key': `"${newKey()}"` }, body: '{}' }, env)
    expect(res.status).toBe(302)
    expect(res.headers.get('location')).toBe('https://elsewhere.example/x')
  })
})
