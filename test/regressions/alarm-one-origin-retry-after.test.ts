/**
 * Review s31 (diff), D8: the alarm's resend (df8f402, resend.ts) defers the whole relay until the first origin that
 * asked is ready (Retry-After, up to an hour), even when another origin of the plan never asked to wait and only
 * failed in a way that passes (a reset, a timeout). One origin's maintenance page then holds a dead Worker's write
 * for an hour, though the next round could have gone to the other origin within the usual 2-60 s backoff
 * (docs/dispatch.md: "An origin whose answer says Retry-After is not sent the request again before then": a per-origin
 * rule, as failover applies it within a round).
 */
import { env } from 'cloudflare:workers'
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { afterEach, describe, expect, it } from 'vitest'
import type { StableAreaApi } from '../../src/durable/types.js'
import { fingerprint } from '../../src/middleware/fingerprint.js'
import { lookupKey } from '../../src/middleware/identity.js'
import { forwardRequest } from '../../src/origin-adapter/forward.js'
import { expireLeases, newKey, stubFor } from '../helpers.js'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
})

describe("the alarm's resend: one origin's Retry-After", () => {
  it('does not hold back a resend to the other origin, which never asked to wait', async () => {
    const sends: number[] = []
    // The origin, down for maintenance for an hour (the object's fetch, in the test's isolate).
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init)
      const host = new URL(req.url).hostname
      if (host === 'flaky.example') {
        sends.push(Date.now())
        throw new TypeError('Network connection lost.')
      }
      if (host !== 'maint.example') return realFetch(input, init)
      sends.push(Date.now())
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
      relay: {
        request: forwardRequest(req, bytes),
        plan: { strategy: 'failover', origins: [{ name: 'eu', url: 'http://maint.example' }, { name: 'us', url: 'http://flaky.example' }], timeoutMs: 1000, deadlineMs: 3000, maxAttempts: 3, maxResponseBytes: 1 << 20 },
        key,
      },
    })
    await expireLeases(key)
    await runDurableObjectAlarm(await stubFor(key))
    const relay = await runInDurableObject(await stubFor(key), (_o, state) =>
      state.storage.sql.exec<{ state: string; next_at: number; resends: number }>('SELECT state, next_at, resends FROM relays WHERE lookup = ?', lookupKey('', key)).one(),
    )
    console.log('sends:', sends.length, 'relay after round 1:', relay.state, 'resends', relay.resends, 'next resend in', Math.round((relay.next_at - Date.now()) / 1000), 's')
    expect(sends.length).toBeGreaterThan(0)
    expect(relay.next_at - Date.now()).toBeLessThanOrEqual(60_000)
  })
})
