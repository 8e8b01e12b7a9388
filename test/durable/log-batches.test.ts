import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { OrderedDomains } from '../../src/durable/ordered.js'
import type { StableArea } from '../../src/durable/stable-area.js'
import type { RelayInput } from '../../src/durable/types.js'

const relayOf = (bytes: number): RelayInput => ({
  key: 'k',
  request: { method: 'POST', path: '/docs', headers: [], body: new Uint8Array(bytes) },
  plan: { strategy: 'replicate', origins: [{ name: 'r1', url: 'http://127.0.0.1:1' }], timeoutMs: 1000, deadlineMs: 2000, maxAttempts: 1, maxResponseBytes: 1024, ackQuorum: 1 },
})

/**
 * The alarm feeds a lagging replica from the log in batches; a batch of large requests (up to 1 MiB each) must
 * not fill the object's memory (128 MB), so a batch is bounded in body bytes as well as in entries.
 */
describe('log batches for a replica that catches up', () => {
  it('hold at most the byte budget (and always the first entry), in order, for any body sizes', async () => {
    const stub = env.ONCE.get(env.ONCE.idFromName(`batches-${crypto.randomUUID()}`))
    await stub.stats()
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 4000 }), { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 20_000 }), async (sizes, budget) => {
        const result = await runInDurableObject(stub, (_o: StableArea, state) => {
          const ordered = new OrderedDomains(state.storage.sql)
          const domain = `d-${crypto.randomUUID()}`
          sizes.forEach((n, i) => ordered.append(domain, `l${i}`, `q${i}`, relayOf(n), Date.now()))
          return ordered.entries(domain, 1, sizes.length, budget).map((e) => ({ sequence: e.sequence, bytes: e.request.body.byteLength }))
        })
        // The longest prefix that fits the budget, but never nothing.
        let take = 0
        for (let total = 0; take < sizes.length && (take === 0 || total + sizes[take]! <= budget); take++) total += sizes[take]!
        expect(result).toEqual(sizes.slice(0, take).map((bytes, i) => ({ sequence: i + 1, bytes })))
      }),
      { numRuns: 40 },
    )
  })
})
