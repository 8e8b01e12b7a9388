/**
 * The alarm's resend of a dead Worker's relay and `Retry-After` (review s31 P8, D8): a round waits as long as the
 * origins asked (an origin down for maintenance for an hour is not sent the request again 2 s later, and five rounds
 * do not give the key up within a minute), but one origin's wait does not hold back another origin of the plan that
 * never asked to wait (a reset there): then the usual backoff (2–60 s).
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { afterEach, describe, expect, it } from 'vitest'
import type { StableAreaApi } from '../../src/durable/types.js'
import type { RelayPlan } from '../../src/origin-adapter/types.js'
import { fingerprint } from '../../src/middleware/fingerprint.js'
import { lookupKey } from '../../src/middleware/identity.js'
import { forwardRequest } from '../../src/origin-adapter/forward.js'
import { expireLeases, newKey, stubFor } from '../helpers.js'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
})

/** One alarm round of a relay a Worker left behind, to `origins`; returns the sends and when the next round is due. */
async function oneRound(origins: RelayPlan['origins']): Promise<{ sends: number; nextInMs: number }> {
  let sends = 0
  // The origins, in the object's fetch (the test's isolate): maint.example is down for an hour, flaky.example resets.
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const host = new URL(new Request(input, init).url).hostname
    if (host === 'flaky.example') {
      sends++
      throw new TypeError('Network connection lost.')
    }
    if (host !== 'maint.example') return realFetch(input, init)
    sends++
    return new Response('down for maintenance', { status: 503, headers: { 'retry-after': '3600' } })
  }) as typeof fetch
  const key = newKey()
  const url = 'http://localhost/accounts/ma/deposits'
  const body = '{"amount":100}'
  const req = new Request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  const bytes = new TextEncoder().encode(body)
  const stub = (await stubFor(key)) as unknown as StableAreaApi
  await stub.admit({
    lookup: lookupKey('', key),
    fingerprint: await fingerprint({ method: 'POST', url, headers: req.headers, body: bytes }),
    leaseMs: 3000,
    ttlMs: 86_400_000,
    waitMs: 0,
    relay: { request: forwardRequest(req, bytes), plan: { strategy: 'failover', origins, timeoutMs: 1000, deadlineMs: 3000, maxAttempts: 3, maxResponseBytes: 1 << 20 }, key },
  })
  await expireLeases(key)
  await runDurableObjectAlarm(await stubFor(key))
  const relay = await runInDurableObject(await stubFor(key), (_o, state) =>
    state.storage.sql.exec<{ next_at: number }>('SELECT next_at FROM relays WHERE lookup = ?', lookupKey('', key)).one(),
  )
  return { sends, nextInMs: relay.next_at - Date.now() }
}

describe("the alarm's resend and Retry-After", () => {
  it('an origin that asked for an hour is not sent the relay again two seconds later', async () => {
    const round = await oneRound([{ name: 'eu', url: 'http://maint.example' }])
    expect(round.sends).toBeGreaterThan(0)
    expect(round.nextInMs).toBeGreaterThan(3_500_000)
  })

  it("one origin's hour does not hold back a resend to another origin, which never asked to wait", async () => {
    const round = await oneRound([{ name: 'eu', url: 'http://maint.example' }, { name: 'us', url: 'http://flaky.example' }])
    expect(round.sends).toBeGreaterThan(1)
    expect(round.nextInMs).toBeLessThanOrEqual(60_000)
  })
})
