// Review s32 (diff), findings 2 and 3, both in f295a40 (a failed ordered write's 502 sums up the gap fill's sends
// apart from its own: src/origin-adapter/strategies/replicate.ts `fill`, src/shared/outcome.ts `behind`).
// 2. `fill` marks as gap fill every attempt record appended to the shared attempt log while its own send was on its
//    way (`log.slice(before)` after the await); the replicas' tasks run side by side and push to that one log, so
//    another replica's sends of *this* request made meanwhile are marked gap fill too: the 502 then says a replica
//    answered the earlier entry 503 when it answered this request 503, and leaves that send out of the request's own
//    summary (and refusalOf() names the wrong sequence, "(gap fill before N)", for the status page).
// 3. `behind` says "it goes through once that one is applied, or abandoned" of every fill, whatever it met: here gap
//    fill delivered sequence 1 to both replicas (201), which waited behind nothing after it.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { bank, list, restoreFetch, wrapFetch } from '../origin-adapter/domains.js'

afterEach(restoreFetch)

describe("a failed ordered write's detail, after gap fill", () => {
  it("marks only the fill's own sends as gap fill, and says nothing waits behind an entry the fill applied", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const origins = await startOrigins(['eu', 'us'])
    const [, us] = list(origins)
    const sends = new Map<string, number>()
    const appliedFirst = new Set<string>()
    wrapFetch(list(origins).map((o) => o.url), async (request, send) => {
      const note = request.headers.get('x-note')
      const at = new URL(request.url).origin
      if (note === 'first') {
        const n = (sends.get(at) ?? 0) + 1
        sends.set(at, n)
        // Each replica refuses the first write's first send: both lag by one, the write stays pending.
        if (n === 1) return new Response('busy', { status: 503 })
        // us is slow to answer the gap fill: eu's sends of the second write happen meanwhile.
        if (at === new URL(us!.url).origin) await scheduler.wait(300)
      }
      if (note === 'down') {
        // The receiver's gap answer while sequence 1 is missing there (as onceReceiver() gives it); then a 503.
        if (!appliedFirst.has(at)) return new Response('{}', { status: 409, headers: { 'once-expected-sequence': '1', 'once-applied': '?0' } })
        return new Response('busy', { status: 503 })
      }
      const res = await send()
      if (note === 'first' && res.status === 201) appliedFirst.add(at)
      return res
    })
    const deposit = bank(list(origins), { maxAttempts: 1, ackQuorum: 1 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey(), 1, { 'x-note': 'first' })).status).toBe(502)
    const res = await deposit(account, newKey(), 2, { 'x-note': 'down' })
    warn.mockRestore()
    error.mockRestore()
    expect(res.status).toBe(502)
    const { detail } = (await res.json()) as { detail: string }
    const [own, fill] = detail.split('. The replicas were first sent')
    // Gap fill sent sequence 1 once to each replica, and each applied it.
    // (Replicas are listed in the order their answers came in: either order.)
    expect.soft(fill, detail).toMatch(/sequence 1 \((eu: 201; us: 201|us: 201; eu: 201)\)/)
    // Each replica then answered this request (sequence 2) 503: the request's own summary says so.
    expect.soft(own, detail).toMatch(/(eu: 503 ×2; us: 503 ×2|us: 503 ×2; eu: 503 ×2)\)$/)
    // Nothing is waited behind: sequence 1 is applied at both.
    expect.soft(fill, detail).not.toMatch(/it goes through once that one is applied/)
  })
})
