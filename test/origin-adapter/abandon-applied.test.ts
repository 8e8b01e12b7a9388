import { runDurableObjectAlarm } from 'cloudflare:test'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { eventually, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { bank, list, restoreFetch, sql, stateOf, stubOf, wrapFetch } from './domains.js'
import type { StableAreaApi } from '../../src/durable/types.js'

/**
 * (Review s30b.) StableArea.abandon(domain, sequence) decides "no replica applied it" from what the object was told
 * (replicas.acked), never from the replicas. A replica that applied the request but whose answer never reached the
 * object (lost on the way, then unreachable) is abandoned over: the client is told "it will not run", the other
 * replica records a no-op, and the replica that applied it keeps the effect (it turns suspect when fed the no-op).
 */

afterEach(restoreFetch)

describe('abandon of a slot a replica applied but never reported', () => {
  it('is refused (docs/replication.md: "refused ... once any replica applied it")', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const origins = await startOrigins(['r1', 'r2'])
    const [r1, r2] = origins
    let cut = false
    let cutHard = false
    wrapFetch([r1!.url, r2!.url], async (request, send) => {
      if (!cut) return send()
      if (request.url.startsWith(r2!.url)) return new Response('down', { status: 503, headers: { 'once-applied': '?0' } })
      if (!cutHard && request.headers.get('once-sequence') === '2') {
        const res = await send()
        await res.arrayBuffer()
        cutHard = true
      }
      throw new TypeError('Network connection lost.')
    })
    const deposit = bank(list(origins), { ackQuorum: 1, maxAttempts: 2 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey(), 1)).status).toBe(201)
    await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.acked === 1) === true)
    cut = true
    const key = newKey()
    const lost = await deposit(account, key, 5)
    // The lease runs out; the alarm tries once (r1 unreachable, r2 503): the operator sees a stuck head.
    await sql(account, `UPDATE records SET lease_until = ${Date.now() - 1} WHERE state = 'in_flight'`)
    await runDurableObjectAlarm(stubOf(account))
    await sql(account, `UPDATE records SET lease_until = ${Date.now() - 1} WHERE state = 'in_flight'`)
    const result = await (stubOf(account) as unknown as StableAreaApi).abandon(account, 2)
    // The network heals: the alarm feeds both replicas.
    cut = false
    for (let i = 0; i < 3; i++) {
      await sql(account, 'UPDATE replicas SET next_at = NULL')
      await runDurableObjectAlarm(stubOf(account))
    }
    const s1 = await r1!.stats()
    const s2 = await r2!.stats()
    const state = await stateOf(account)
    warn.mockRestore()
    error.mockRestore()
    const facts = {
      client: lost.status,
      abandon: result,
      r1Applied: s1.applied.filter((a) => a.domain === account).map((a) => `${a.sequence}${a.noop ? ' noop' : ''}`),
      r2Applied: s2.applied.filter((a) => a.domain === account).map((a) => `${a.sequence}${a.noop ? ' noop' : ''}`),
      balances: [s1.balances[account], s2.balances[account]],
      replicas: state?.replicas.map((r) => `${r.name} ${r.state}`),
    }

    // r1 applied sequence 2 (the deposit of 5) before abandon was called: abandon must refuse (or first ask r1).
    expect(facts.r1Applied).toContain('2')
    expect(result).toMatchObject({ abandoned: false })
  })
})
