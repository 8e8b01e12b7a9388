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

  it('keeps Basic callers apart, and warns once that their scope hashes user:password (a guessable secret), never for a bearer token', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    let runs = 0
    const app = new Hono().post('/x', once({ replayCache: false }), (c) => c.text(`run ${++runs}`, 201))
    const post = (key: string, authorization: string) => app.request('/x', { method: 'POST', headers: { 'idempotency-key': key, authorization } }, env)
    const basic = (pair: string) => `Basic ${btoa(pair)}`
    const key = newKey()
    await post(newKey(), 'Bearer opaque-api-key-0123456789')
    expect(warn.mock.calls.filter(([m]) => /Basic/.test(String(m)))).toHaveLength(0)
    expect((await post(key, basic('alice:pw1'))).status).toBe(201)
    expect((await post(key, basic('alice:pw1'))).headers.get('idempotent-replayed')).toBe('true')
    // Another user, or the same user with another password: not the same caller as far as once() can tell.
    expect((await post(key, basic('bob:pw1'))).headers.get('idempotent-replayed')).toBeNull()
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    await post(newKey(), `bAsIc ${btoa('carol:pw')}`)
    const said = warn.mock.calls.filter(([m]) => /Basic credentials/.test(String(m)))
    expect(said).toHaveLength(1)
    expect(String(said[0]![0])).toMatch(/scope: \(c\) =>/)
    expect(runs).toBe(4)
    warn.mockRestore()
  })
})
