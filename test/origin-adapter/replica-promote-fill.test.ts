import { runDurableObjectAlarm } from 'cloudflare:test'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { eventually, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { bank, list, restoreFetch, sql, stateOf, stubOf, wrapFetch } from './domains.js'
import type { StableAreaApi } from '../../src/durable/types.js'

/**
 * (Review s30b.) the alarm promotes a lagging replica it fed up to the head it was given,
 * however many writes the domain admitted meanwhile; a live write fills in at most 32 entries. A replica promoted
 * while more than 32 entries behind counts for ackQuorum 'all' at once, but no live write can bring it up (the fill
 * is refused): the next write fails 502 (the replica goes back to lagging, the alarm promotes it again, ...).
 */

afterEach(restoreFetch)

describe("ackQuorum 'all', a lagging replica fed by the alarm while the domain takes 40 writes", () => {
  it('the write after its promotion is applied (201)', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2'])
    const deposit = bank(list(origins), { ackQuorum: 'all' })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    const stub = stubOf(account) as unknown as StableAreaApi
    expect((await deposit(account, newKey(), 1)).status).toBe(201)
    await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.acked === 1) === true)
    await stub.setReplica(account, 'r2', 'lagging')
    for (let i = 0; i < 3; i++) expect((await deposit(account, newKey(), 1)).status).toBe(201) // r1 alone ('all' of the active)
    let busy = false
    wrapFetch([origins[1]!.url], async (request, send) => {
      if (!busy && request.headers.get('once-sequence') === '4') {
        busy = true
        // While the alarm feeds r2 the head it was given (4), the domain takes 40 writes.
        for (let i = 0; i < 40; i++) await deposit(account, newKey(), 1)
      }
      return send()
    })
    await sql(account, 'UPDATE replicas SET next_at = NULL')
    await runDurableObjectAlarm(stubOf(account))
    const after = await stateOf(account)
    const next = await deposit(account, newKey(), 1)
    const text = next.status === 201 ? '' : (await next.text()).slice(0, 300)
    warn.mockRestore()
    error.mockRestore()
    expect(next.status).toBe(201)
  }, 60_000)
})
