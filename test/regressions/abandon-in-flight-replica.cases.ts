import { describe, expect, it, vi, afterEach } from 'vitest'
import { eventually, startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { bank, list, restoreFetch, sql, stateOf, stubOf, wrapFetch } from '../origin-adapter/domains.js'
import type { StableAreaApi } from '../../src/durable/types.js'

/**
 * (Review s32, ordered.) StableArea.abandon (src/durable/abandon.ts askReplicas) counts every `failed` answer as "it
 * did not apply it", including `409 in-flight`: the receiver's answer when another send of this very request id is
 * being applied there right now (its id lock was held past waitMs, src/origin/receiver.ts:227-228). That run may
 * commit a moment later. src/shared/outcome.ts says so itself ("so may an origin busy with this very request
 * (`in-flight`)" have applied it), and docs/replication.md / abandon.ts promise abandon is refused when a replica
 * "does not answer (it may have)". Here the replica's concurrent run (a dead Worker's send whose handler is slow)
 * commits the deposit while the probe is answered in-flight: the operator is told "abandoned", the client gets
 * "it will not run", and the replica keeps the effect.
 *
 * The wrap plays the timing the receiver produces: the probe to `a` finds its id lock held (answered 409 in-flight,
 * Once-Applied ?0), and the run holding it commits (the request reaches `a` and is applied).
 */

afterEach(restoreFetch)

const refused = () =>
  new Response(JSON.stringify({ type: 'https://hono-once.dev/problems/handler-failed', status: 500, retryable: false, title: 'x' }), {
    status: 500,
    headers: { 'content-type': 'application/problem+json', 'once-applied': '?0' },
  })

/** What a replica's probe gets while the run that holds its id lock commits the request behind it. */
const probeAnswers: [string, () => Response][] = [
  [
    'a 409 in-flight (the probe waited on the id lock past waitMs)',
    () =>
      new Response(JSON.stringify({ type: 'https://hono-once.dev/problems/in-flight', status: 409, title: 'In flight', retryable: true }), {
        status: 409,
        headers: { 'content-type': 'application/problem+json', 'once-applied': '?0', 'retry-after': '1' },
      }),
  ],
  ["a load balancer's 504 page (no Once-Applied) in front of it", () => new Response('<html>504 Gateway Time-out</html>', { status: 504, headers: { 'content-type': 'text/html' } })],
]

describe('abandon while a replica is applying the request', () => {
  it.each(probeAnswers)('is refused when the replica answers %s: the run may commit it', async (_, probeAnswer) => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const [a, b] = await startOrigins(['a', 'b'])
    let probing = false
    wrapFetch([a!.url, b!.url], async (request, send) => {
      if (request.headers.get('once-sequence') !== '2') return send()
      if (request.url.startsWith(b!.url) || !probing) return refused()
      // a: the request reaches the receiver and is applied; the probe's answer says nothing of it.
      await (await send()).arrayBuffer()
      return probeAnswer()
    })
    const deposit = bank(list([a!, b!]), { ackQuorum: 1, maxAttempts: 1 })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey(), 1)).status).toBe(201)
    await eventually(() => stateOf(account), (s) => s?.replicas.every((r) => r.acked === 1) === true)
    await deposit(account, newKey(), 5) // both refuse 2 for now: the head is stuck
    await sql(account, `UPDATE records SET lease_until = ${Date.now() - 1} WHERE state = 'in_flight'`)
    probing = true
    const result = await (stubOf(account) as unknown as StableAreaApi).abandon(account, 2)
    const applied = (await a!.stats()).applied.filter((x) => x.domain === account).map((x) => `${x.sequence}${x.noop ? ' noop' : ''}`)
    warn.mockRestore()
    error.mockRestore()
    expect(applied).toEqual(['1', '2']) // a applied the deposit of 5
    expect(result).toMatchObject({ abandoned: false })
  })
})
