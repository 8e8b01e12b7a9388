import { runDurableObjectAlarm } from 'cloudflare:test'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { eventually, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { bank, list, restoreFetch, sql, stateOf, stubOf, wrapFetch } from './domains.js'

/**
 * (Review s30b.) the alarm's deferReplica honours a replica's Retry-After, uncapped (up to 999 999 s),
 * while a failed send is "no progress" (updated_at stays). One feed that meets a maintenance page's
 * `503 Retry-After: 120` keeps the replica unfed for 2 minutes however short the maintenance, and with a
 * retention shorter than the wait (logRetentionMs: 0, floor 60 s) prune turns it `stale` (a snapshot restore)
 * though it answered again seconds later. The 5-minute cap of the backoff no longer bounds it.
 */

afterEach(restoreFetch)

describe("a lagging replica whose feed met one 503 Retry-After", () => {
  it('is fed again once it is back (within the documented backoff), not left to turn stale', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2'])
    let maintenance = false
    wrapFetch([origins[0]!.url], async (_request, send) =>
      maintenance ? new Response('maintenance', { status: 503, headers: { 'retry-after': '120' } }) : send(),
    )
    const deposit = bank(list(origins), { ackQuorum: 1, maxAttempts: 1, logRetentionMs: 0 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey(), 1)).status).toBe(201)
    await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.acked === 1) === true)
    maintenance = true
    expect((await deposit(account, newKey(), 1)).status).toBe(201) // r2's; r1 is left lagging
    await eventually(() => stateOf(account), (s) => s?.replicas.find((r) => r.name === 'r1')?.state === 'lagging')
    // The alarm's feed meets the maintenance page once.
    await sql(account, 'UPDATE replicas SET next_at = NULL')
    await runDurableObjectAlarm(stubOf(account))
    maintenance = false // over a moment later
    // 61 s pass (the first backoff is 2 s; the retention floor is 60 s).
    await sql(account, 'UPDATE replicas SET updated_at = updated_at - 61000, next_at = next_at - 61000')
    await runDurableObjectAlarm(stubOf(account))
    const r1 = (await stateOf(account))?.replicas.find((r) => r.name === 'r1')
    warn.mockRestore()
    error.mockRestore()

    expect(r1?.state).not.toBe('stale')
    expect(r1?.acked).toBe(2)
  })
})
