/**
 * Review s31 (docs) F3: onceObject() passing on a keyless request whose call was lost on the way answered
 * 503 stable-area-unavailable with a detail saying it may have taken effect, yet `retryable: true` (the type's), so a
 * generic client that honours `retryable` would resend a write that may already be applied. That answer now says
 * `retryable: false` (and no Retry-After); an idempotent method keeps the type's `retryable: true`. errors.md lists it.
 */
import { Hono } from 'hono'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { onceObject, PROBLEM_BASE } from '../../src/index.js'
import type { OnceCall, OnceObjectApi } from '../../src/durable/once-object-types.js'
import { rpcProblem } from '../../src/middleware/rpc.js'
import { problem, problemParts } from '../../src/shared/problem.js'

const lost = () => Promise.reject(Object.assign(new Error('Network connection lost.'), { retryable: true }))
const stub = { once: (_call: OnceCall) => lost(), onceCall: () => lost() } as unknown as OnceObjectApi
const app = new Hono().all('/x', onceObject(() => stub as never, { required: false }))

describe('a keyless request onceObject() could not hand to its object', () => {
  beforeAll(() => void vi.spyOn(console, 'error').mockImplementation(() => {}))

  it.each(['POST', 'PATCH'])('%s: 503 stable-area-unavailable that may have taken effect says retryable: false, and no Retry-After', async (method) => {
    const res = await app.request('/x', { method, body: '{"amount":1}' })
    const body = (await res.json()) as { type: string; status: number; detail: string; retryable: boolean }
    expect({ status: res.status, bodyStatus: body.status, type: body.type }).toEqual({ status: 503, bodyStatus: 503, type: `${PROBLEM_BASE}stable-area-unavailable` })
    expect(body.detail).toMatch(/may have taken effect/)
    expect(body.retryable).toBe(false)
    expect(res.headers.get('retry-after')).toBeNull()
  })

  it.each(['GET', 'PUT', 'DELETE'])('%s (idempotent): the type\'s retryable: true and Retry-After: 1 stay', async (method) => {
    const res = await app.request('/x', { method, ...(method === 'GET' ? {} : { body: '{}' }) })
    const body = (await res.json()) as { retryable: boolean; detail: string }
    expect(res.status).toBe(503)
    expect(body.retryable).toBe(true)
    expect(body.detail).toMatch(/idempotent/)
    expect(res.headers.get('retry-after')).toBe('1')
  })

  it('with a key, an unreachable store still says nothing ran: retryable: true, Retry-After: 1', async () => {
    const res = rpcProblem(new Error('Network connection lost.'), '/x', 'k-1')
    expect(await res.json()).toMatchObject({ retryable: true, idempotency_key: 'k-1' })
    expect(res.headers.get('retry-after')).toBe('1')
  })

  it("a per-answer retryable only narrows the type's: status and title stay the catalogue's", async () => {
    const { status, body } = problemParts('stable-area-unavailable', { detail: '' })
    const res = rpcProblem(new Error('Network connection lost.'), '/x', '')
    expect(await res.json()).toMatchObject({ status, title: (JSON.parse(body) as { title: string }).title, retryable: false })
    expect(res.status).toBe(status)
    expect(await problem('key-reused', { detail: '', retryable: false }).json()).toMatchObject({ status: 422, retryable: false })
  })
})
