import { afterEach, describe, expect, it, vi } from 'vitest'
import { eventually, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { bank, list, restoreFetch, stateOf, wrapFetch } from './domains.js'

/**
 * (Review s30b.) replicate's applyAt reads the answer's Retry-After before it reads whether the answer
 * applied the request, and breaks out when the wait runs past the deadline. An applied answer that carries a
 * Retry-After (an async API's `202 Accepted` + `Retry-After: 30`, "poll in 30 s") is then thrown away: the
 * replica applied the write, the client gets a retryable 502, the replica is marked failed (lagging).
 */

afterEach(restoreFetch)

describe('a replica that applies a write and answers 202 with Retry-After: 30', () => {
  it('is an applied answer (the client gets the 202), whatever the Retry-After', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2'])
    wrapFetch(list(origins).map((o) => o.url), async (_request, send) => {
      const res = await send()
      // The app's own answer, applied (?1): accepted, poll in 30 s.
      const headers = new Headers(res.headers)
      if (headers.get('once-applied') === '?1') headers.set('retry-after', '30')
      return new Response(res.body, { status: res.status, headers })
    })
    const deposit = bank(list(origins), { ackQuorum: 1 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const res = await deposit(account, newKey(), 1)
    const body = await res.text()
    const state = await eventually(() => stateOf(account), (s) => (s?.replicas.length ?? 0) === 2)
    const stats = await origins[0]!.stats()
    warn.mockRestore()
    error.mockRestore()
    console.log(JSON.stringify({ status: res.status, body: body.slice(0, 300), applied: stats.applied.length, replicas: state?.replicas.map((r) => `${r.name} ${r.state} ${r.acked}`) }))
    expect(res.status).toBe(201)
  })
})
