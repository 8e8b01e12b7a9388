import { runDurableObjectAlarm } from 'cloudflare:test'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { eventually, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { bank, list, restoreFetch, sql, stateOf, stubOf, wrapFetch } from '../origin-adapter/domains.js'

/**
 * (Review s32 gateway, M1 and M2.) One request every replica refuses for good (the app throws on it) holds its
 * domain's later writes until it is poison. What each party is told about it was wrong:
 * - a held write got "Only 0 of the 1 replica answers needed came in time (eu: 500 handler-failed ×2; …)": the
 *   handler-failed was the earlier slot's, met by gap fill, and the held write never reached a handler;
 * - the status page said "no answer to sequence N" of replicas that answered 500 handler-failed every round;
 * - the poison answer said "for 600 s" (poisonAfterMs) where the wait had been ~813 s (the alarm's rounds back off).
 */

afterEach(restoreFetch)

/** The receiver's answer when the handler threw: nothing applied, for good. */
const handlerFailed = () =>
  new Response(JSON.stringify({ type: 'https://hono-once.dev/problems/handler-failed', title: 'The handler threw; nothing was applied', status: 500, retryable: false }), {
    status: 500,
    headers: { 'content-type': 'application/problem+json', 'once-applied': '?0' },
  })

async function alarmNow(account: string) {
  await sql(account, `UPDATE records SET lease_until = ${Date.now() - 1} WHERE state = 'in_flight'`)
  await sql(account, 'UPDATE log SET retry_at = NULL')
  await sql(account, 'UPDATE replicas SET next_at = NULL')
  await runDurableObjectAlarm(stubOf(account))
}

describe('a request every replica refuses for good, and the writes of its domain behind it', () => {
  it('a held write is told what it waits behind, the status page says "refused for good", the poison answer states the real wait', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const origins = await startOrigins(['eu', 'us'])
    // The app throws on the one request marked bad, at every replica, however it is sent (itself, gap fill, the alarm).
    wrapFetch(list(origins).map((o) => o.url), async (request, send) =>
      request.headers.get('x-note') === 'bad' && request.headers.get('once-noop') !== '?1' ? handlerFailed() : send(),
    )
    const deposit = bank(list(origins), { maxAttempts: 2 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey(), 1)).status).toBe(201)
    const bad = newKey()
    const first = await deposit(account, bad, 2, { 'x-note': 'bad' })
    // Refused for good by every replica, but the alarm may still find it applied or poison: retryable, same key.
    expect(first.status).toBe(502)
    // Replicas are listed in the order their answers came in: either order.
    expect(await first.json()).toMatchObject({ detail: expect.stringMatching(/(eu: 500 handler-failed; us: 500 handler-failed|us: 500 handler-failed; eu: 500 handler-failed)/) })

    // M2: both replicas answered sequence 2, and refused it for good: the status page says so.
    const lagging = await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.state === 'lagging') === true)
    expect(lagging?.replicas.map((r) => `${r.name}: ${r.reason}`)).toEqual(['eu: refused sequence 2 for good (500 handler-failed)', 'us: refused sequence 2 for good (500 handler-failed)'])

    // M1: a good write behind it, under a new key. Its own sends met a gap; the handler-failed is sequence 2's.
    const held = await deposit(account, newKey(), 3)
    expect(held.status).toBe(502)
    const { detail } = (await held.json()) as { detail: string }
    const [own, fill] = detail.split('. The replicas were first sent')
    expect(own).not.toMatch(/handler-failed/)
    expect(own).toMatch(/\((eu: 409; us: 409|us: 409; eu: 409)\)$/)
    expect(fill).toMatch(/earlier request of its domain \(gap fill\): sequence 2 \((eu: 500 handler-failed; us: 500 handler-failed|us: 500 handler-failed; eu: 500 handler-failed)\); it waits behind sequence 2, and goes through once that one is applied/)
    // The status page still names the refusal, not the held write.
    expect((await stateOf(account))?.replicas.map((r) => r.reason)).toEqual(['refused sequence 2 for good (500 handler-failed)', 'refused sequence 2 for good (500 handler-failed)'])

    // The alarm's rounds: the first everyone refused began 813 s ago (the backoff carried it past poisonAfterMs).
    const refusedSince = Date.now() - 813_000
    await sql(account, `UPDATE log SET refused_since = ${refusedSince} WHERE sequence = 2`)
    await alarmNow(account)
    const again = await deposit(account, bad, 2, { 'x-note': 'bad' })
    const next = await deposit(account, newKey(), 4)
    warn.mockRestore()
    error.mockRestore()
    expect(again.status).toBe(502)
    const abandoned = (await again.json()) as { type: string; detail: string }
    expect(abandoned.type).toBe('https://hono-once.dev/problems/request-abandoned')
    expect(abandoned.detail).toMatch(/refused this request for good \(sequence 2 of acct-\w+\) for \d+ s, since \d{4}-\d\d-\d\dT/)
    // The real wait: from 813 s up to the time this test has taken since (a loaded machine takes seconds here).
    const waited = Number(/for (\d+) s, since/.exec(abandoned.detail)?.[1])
    expect(waited).toBeGreaterThanOrEqual(813)
    expect(waited).toBeLessThanOrEqual(Math.ceil((Date.now() - refusedSince) / 1000))
    expect(abandoned.detail).not.toMatch(/600 s/)
    expect(next.status).toBe(201)
  })

  it('a replica that gave no answer is still "no answer to sequence N"; a temporary refusal "did not apply" it; a history past it a "conflict"', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const origins = await startOrigins(['eu', 'us', 'sa', 'ap'])
    const [eu, us, sa] = list(origins)
    wrapFetch(list(origins).map((o) => o.url), async (request, send) => {
      if (request.headers.get('x-note') !== 'flaky') return send()
      if (request.url.startsWith(eu!.url)) throw new TypeError('Network connection lost.')
      if (request.url.startsWith(us!.url)) return new Response('busy', { status: 503, headers: { 'retry-after': '3600' } })
      // A replica restored from another domain's history: it expects a sequence past this one.
      if (request.url.startsWith(sa!.url)) return new Response('{}', { status: 409, headers: { 'once-expected-sequence': '9', 'once-applied': '?0' } })
      return send()
    })
    const deposit = bank(list(origins), { maxAttempts: 2, ackQuorum: 1 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey(), 1)).status).toBe(201)
    await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.acked === 1) === true)
    expect((await deposit(account, newKey(), 2, { 'x-note': 'flaky' })).status).toBe(201)
    const state = await eventually(() => stateOf(account), (s) => s?.replicas.filter((r) => r.state === 'lagging').length === 3)
    warn.mockRestore()
    error.mockRestore()
    expect(Object.fromEntries(state!.replicas.map((r) => [r.name, r.reason]))).toEqual({
      eu: 'no answer to sequence 2',
      us: 'did not apply sequence 2 (503)',
      sa: 'conflict at sequence 2: it expects sequence 9, past 2',
      ap: null,
    })
  })
})
