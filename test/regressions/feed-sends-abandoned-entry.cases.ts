import { runDurableObjectAlarm } from 'cloudflare:test'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { eventually, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { bank, list, restoreFetch, sql, stateOf, stubOf, wrapFetch } from '../origin-adapter/domains.js'
import type { StableAreaApi } from '../../src/durable/types.js'

/**
 * (Review s32, ordered.) The alarm's feed (src/durable/catch-up.ts feed()) reads a batch of up to 100 log entries
 * before its first send and sends each as it was read. An entry abandoned while the batch is on its way (the
 * operator's StableArea.abandon, which answers "it will not run") still goes out as the real request, not as the
 * no-op it has become: the lagging replica applies the abandoned write. Gap fill reads each entry just before it
 * sends it for exactly this reason (docs/replication.md "an entry abandoned meanwhile goes out as the no-op").
 */

afterEach(restoreFetch)

const refusal = () =>
  new Response(JSON.stringify({ type: 'https://hono-once.dev/problems/handler-failed', status: 500, retryable: false, title: 'x' }), {
    status: 500,
    headers: { 'content-type': 'application/problem+json', 'once-applied': '?0' },
  })

describe('an entry abandoned while the alarm feeds a lagging replica', () => {
  it('reaches that replica as the no-op it became, never as the abandoned write', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const [a, r] = await startOrigins(['a', 'r'])
    let rCut = true
    let hold: Promise<void> | undefined
    let release!: () => void
    let held = false
    wrapFetch([a!.url, r!.url], async (request, send) => {
      const seq = request.headers.get('once-sequence')
      if (request.url.startsWith(a!.url)) return seq === '2' && request.headers.get('once-noop') !== '?1' ? refusal() : send()
      if (rCut) throw new TypeError('Network connection lost.')
      if (seq === '1' && hold) {
        held = true
        await hold
      }
      return send()
    })
    const deposit = bank(list([a!, r!]), { ackQuorum: 1, maxAttempts: 1 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey(), 1)).status).toBe(201) // a applies 1; r is unreachable: lagging
    await deposit(account, newKey(), 5) // a refuses 2 (the app throws), r unreachable: pending
    await eventually(() => stateOf(account), (s) => s?.head === 2 && s.replicas.some((x) => x.name === 'r' && x.state === 'lagging'))
    await sql(account, `UPDATE records SET lease_until = ${Date.now() - 1} WHERE state = 'in_flight'`)
    await sql(account, 'UPDATE replicas SET next_at = NULL')
    // r is back; the alarm feeds it [1, 2], read in one batch; its send of 1 is slow.
    rCut = false
    hold = new Promise((res) => (release = res))
    const alarm = runDurableObjectAlarm(stubOf(account))
    await eventually(async () => held, (h) => h)
    // Meanwhile the operator abandons the stuck head 2: a refuses it, r has not applied it (gap): abandoned.
    const result = await (stubOf(account) as unknown as StableAreaApi).abandon(account, 2)
    release()
    await alarm
    const applied = (await r!.stats()).applied.filter((x) => x.domain === account).map((x) => `${x.sequence}${x.noop ? ' noop' : ''}`)
    const balance = (await r!.stats()).balances[account]
    warn.mockRestore()
    error.mockRestore()
    expect(result).toMatchObject({ abandoned: true })
    // The client was told "it will not run"; r must record 2 as a no-op (balance 1), not apply the deposit of 5.
    expect({ applied, balance }).toEqual({ applied: ['1', '2 noop'], balance: 1 })
  })
})
