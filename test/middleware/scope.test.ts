import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { jwt } from 'hono/jwt'
import { sign } from 'hono/utils/jwt/jwt'
import { describe, expect, it, vi } from 'vitest'
import { once } from '../../src/index.js'
import { newKey } from '../helpers.js'

const secret = 'test-secret-for-hs256'
const token = (claims: Record<string, unknown>) => sign({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims }, secret, 'HS256')

/** A deposit route behind hono/jwt, then once() with its default scope: the order the README shows. */
function securedBank() {
  const runs = new Map<string, number>()
  const app = new Hono()
  app.use('/deposits', jwt({ secret, alg: 'HS256' }))
  app.post('/deposits', once({ replayCache: false }), (c) => {
    const who = (c.get('jwtPayload') as { sub: string }).sub
    runs.set(who, (runs.get(who) ?? 0) + 1)
    return c.json({ who, run: runs.get(who) }, 201)
  })
  const post = (key: string, bearer: string) =>
    app.request('/deposits', { method: 'POST', headers: { 'idempotency-key': key, authorization: `Bearer ${bearer}` }, body: '{}' }, env)
  return { runs, post }
}

describe('the default scope (issue 11.3)', () => {
  it('is the JWT principal: a refreshed token of the same subject replays', async () => {
    const { runs, post } = securedBank()
    const key = newKey()
    const first = await post(key, await token({ iss: 'https://auth.example', sub: 'alice', iat: 1 }))
    expect(first.status).toBe(201)
    // An hour later the client retries with a new access token: same principal, different header.
    const refreshed = await post(key, await token({ iss: 'https://auth.example', sub: 'alice', iat: 2, jti: 'new' }))
    expect(refreshed.headers.get('idempotent-replayed')).toBe('true')
    expect(runs.get('alice')).toBe(1)
  })

  it('keeps other subjects, and the same subject from another issuer, apart', async () => {
    const { runs, post } = securedBank()
    const key = newKey()
    await post(key, await token({ iss: 'https://auth.example', sub: 'alice' }))
    const bob = await post(key, await token({ iss: 'https://auth.example', sub: 'bob' }))
    expect(bob.headers.get('idempotent-replayed')).toBeNull()
    const otherIssuer = await post(key, await token({ iss: 'https://evil.example', sub: 'alice' }))
    expect(otherIssuer.headers.get('idempotent-replayed')).toBeNull()
    expect(runs.get('alice')).toBe(2)
    expect(runs.get('bob')).toBe(1)
  })

  it('warns once that requests without a JWT or Authorization are unscoped', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const app = new Hono().post('/x', once(), (c) => c.text('ok', 201))
    for (let i = 0; i < 3; i++) await app.request('/x', { method: 'POST', headers: { 'idempotency-key': newKey() } }, env)
    expect(warn.mock.calls.filter(([m]) => /unscoped/.test(String(m)))).toHaveLength(1)
    warn.mockRestore()
  })
})
