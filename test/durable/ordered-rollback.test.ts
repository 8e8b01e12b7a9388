import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { OrderedDomains } from '../../src/durable/ordered.js'
import type { StableArea } from '../../src/durable/stable-area.js'
import type { RelayInput } from '../../src/durable/types.js'

const relay: RelayInput = {
  key: 'k',
  request: { method: 'POST', path: '/accounts/a/deposits', headers: [], body: new Uint8Array([1]) },
  plan: {
    strategy: 'replicate',
    origins: [{ name: 'r1', url: 'http://127.0.0.1:1' }],
    timeoutMs: 1000,
    deadlineMs: 2000,
    maxAttempts: 1,
    maxResponseBytes: 1024,
    ackQuorum: 1,
  },
}

describe('ordered domains inside a transaction that rolls back', () => {
  it('gives the next sequence again, and the log stays gapless (no in-memory state outlives the rollback)', async () => {
    const stub = env.ONCE.get(env.ONCE.idFromName(`rollback-${crypto.randomUUID()}`))
    await stub.stats() // the object has started and migrated its schema
    const sequences = await runInDurableObject(stub, (_obj: StableArea, state) => {
      const ordered = new OrderedDomains(state.storage.sql)
      const first = ordered.append('acct', 'l1', 'r1', relay, Date.now()).sequence
      expect(() =>
        state.storage.transactionSync(() => {
          ordered.append('acct', 'l2', 'r2', relay, Date.now())
          throw new Error('the admit failed after the append')
        }),
      ).toThrow('the admit failed')
      const again = ordered.append('acct', 'l3', 'r3', relay, Date.now())
      const log = state.storage.sql.exec<{ sequence: number }>(`SELECT sequence FROM log WHERE domain = 'acct' ORDER BY sequence`).toArray()
      return { first, again: again.sequence, replica: again.replicas[0]?.state, log: log.map((r) => r.sequence) }
    })
    expect(sequences).toEqual({ first: 1, again: 2, replica: 'active', log: [1, 2] })
  })
})
