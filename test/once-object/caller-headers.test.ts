/**
 * onceObject()'s answers carry the headers outer middleware set for the caller (review s29d R3): a request id
 * (`c.header()` before any `c.res`) on the first answer, the replay and a 422, and the object's own cookies next to
 * the caller's (Hono's `c.res` setter would replace them), as once()'s do (caller-headers.ts).
 */
import { Hono } from 'hono'
import { cors } from 'hono/cors'
import { setCookie } from 'hono/cookie'
import { requestId } from 'hono/request-id'
import { describe, expect, it } from 'vitest'
import { edge, newAccount, newKey } from './installed.js'

describe('the caller headers of outer middleware on onceObject() answers (review s29d R3)', () => {
  it('requestId() alone: X-Request-Id is on the first answer, the replay and a 422, as on a plain handler\'s', async () => {
    const { send } = edge({}, [requestId()])
    const a = newAccount()
    const k = newKey()
    const first = await send(a, 'deposits', k)
    const replay = await send(a, 'deposits', k)
    const reused = await send(a, 'deposits', k, { body: '{"amount":2}' })
    const control = await new Hono().use(requestId()).post('/x', (c) => c.json({}, 201)).request('/x', { method: 'POST' })
    expect(control.headers.get('x-request-id')).toBeTruthy()
    expect({
      first: [first.status, first.headers.get('x-request-id') !== null],
      replay: [replay.status, replay.headers.get('idempotent-replayed'), replay.headers.get('x-request-id') !== null],
      reused: [reused.status, reused.headers.get('x-request-id') !== null],
    }).toEqual({ first: [201, true], replay: [201, 'true', true], reused: [422, true] })
  })

  it("cors() and an outer setCookie(): the object app's own Set-Cookie is kept next to the caller's", async () => {
    const csrf: Parameters<typeof edge>[1] = [
      cors({ origin: 'https://shop.example' }),
      async (c, next) => {
        setCookie(c, 'csrf', 't1')
        await next()
      },
    ]
    const { send } = edge({}, csrf)
    const a = newAccount()
    const first = await send(a, 'deposits', newKey(), { headers: { origin: 'https://shop.example' } })
    expect(first.status).toBe(201)
    expect(first.headers.get('access-control-allow-origin')).toBe('https://shop.example')
    // The OnceAccount deposit answers Set-Cookie: session=abc; the caller's csrf cookie is added to it.
    expect(first.headers.getSetCookie().sort()).toEqual(['csrf=t1; Path=/', 'session=abc'])
  })
})
