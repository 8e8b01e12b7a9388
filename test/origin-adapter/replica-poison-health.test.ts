import { afterEach, describe, expect, it, vi } from 'vitest'
import { startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { bank, list, restoreFetch, wrapFetch } from './domains.js'

/**
 * (Review s30b.) an app's own 500 passed on ?0 is "permanent for its request but counts against its
 * origin's health". replicate sends a permanent refusal again up to maxAttempts times at the same replica, and
 * each send now charges the replica's breaker: two requests with one bad input (a poison request and the client's
 * retry under a new key, or two callers) open the breaker of every replica, and every other write of every domain
 * in the isolate is then 'skipped' at every replica (502) for the cooldown. A throw (handler-failed) for the same
 * input charges nothing.
 */

afterEach(restoreFetch)

describe("an app's returned 500 for one input, on a replicate route", () => {
  it('does not make healthy replicas skip every other write', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2'])
    // What onceReceiver() passes on when the app's catch returns c.json({ error }, 500) for this one input.
    wrapFetch(list(origins).map((o) => o.url), async (request, send) =>
      request.headers.get('x-bad') === '1' && request.headers.get('once-noop') !== '?1'
        ? new Response(JSON.stringify({ error: 'amount 13 is not supported' }), { status: 500, headers: { 'content-type': 'application/json', 'once-applied': '?0' } })
        : send(),
    )
    const deposit = bank(list(origins), { ackQuorum: 1 })
    const bad1 = await deposit(`acct-${crypto.randomUUID().slice(0, 8)}`, newKey(), 13, { 'x-bad': '1' })
    const bad2 = await deposit(`acct-${crypto.randomUUID().slice(0, 8)}`, newKey(), 13, { 'x-bad': '1' })
    // A good write to another account, right after.
    const good = await deposit(`acct-${crypto.randomUUID().slice(0, 8)}`, newKey(), 1)
    const timing = good.headers.get('server-timing')
    const body = good.status === 201 ? '' : await good.text()
    warn.mockRestore()
    error.mockRestore()
    console.log(JSON.stringify({ bad: [bad1.status, bad2.status], good: good.status, timing, body }))
    expect(good.status).toBe(201)
  })
})
