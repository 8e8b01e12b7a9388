import { decide } from '../decide.js'
import type { ApplyClaim, ApplyOutcome, ApplyWork, AppliedEntry, ReceiverStore, StoredRecord } from '../types.js'

/**
 * The memory store's transaction handle: effects registered with
 * `onCommit` run when the request is recorded, and are dropped when it rolls
 * back, so a test app can keep its state in plain maps and still be atomic.
 *
 * @example
 * c.var.receiver.tx.onCommit(() => balances.set(id, (balances.get(id) ?? 0) + amount))
 */
export interface MemoryTx {
  /** Runs `effect` right after the record commits; never when the request rolls back. One that throws is logged: the request stays applied. */
  onCommit(effect: () => void): void
}

/**
 * A {@link ReceiverStore} held in this process's memory: for tests and
 * demos. Nothing survives a restart, and two processes do not share it.
 *
 * Transaction model: the handler runs outside any lock (the receiver itself
 * makes repeats and one domain's requests wait their turn); at the end the
 * store checks again that the request id and the slot are still free and the
 * sequence still the next one, then records the answer, advances the domain
 * and runs the `onCommit` effects, with no `await` in between. A claim that
 * lost the race gets the decision it would get now, and its effects are dropped.
 * Handlers of different request ids (outside one domain) run concurrently:
 * compute what an effect writes inside the effect, from the state it finds
 * then, never from a read the handler made before an `await`.
 *
 * @returns the store
 * @example
 * import { Hono } from 'hono'
 * import { memoryStore, onceReceiver } from 'hono-once/origin'
 *
 * const balances = new Map<string, number>()
 * const app = new Hono()
 * app.post('/accounts/:id/deposits', onceReceiver({ store: memoryStore() }), async (c) => {
 *   const id = c.req.param('id')
 *   const amount = ((await c.req.json().catch(() => null)) as { amount?: unknown } | null)?.amount
 *   if (typeof amount !== 'number' || !Number.isSafeInteger(amount)) return c.json({ error: 'amount: expected an integer' }, 400)
 *   // Computed when it commits: another deposit may commit while this one awaits.
 *   c.var.receiver.tx.onCommit(() => balances.set(id, (balances.get(id) ?? 0) + amount))
 *   return c.json({ id, deposited: amount }, 201)
 * })
 */
export function memoryStore(): ReceiverStore<MemoryTx> {
  const records = new Map<string, StoredRecord & { appliedAt: number }>()
  const next = new Map<string, number>()
  /** domain → sequence → request id */
  const slots = new Map<string, Map<number, string>>()

  const state = (claim: ApplyClaim) => ({
    record: records.get(claim.requestId),
    next: claim.domain === undefined ? 1 : (next.get(claim.domain) ?? 1),
    slotOwner: claim.domain === undefined || claim.sequence === undefined ? undefined : slots.get(claim.domain)?.get(claim.sequence),
  })

  const applied = (domain?: string): AppliedEntry[] => {
    const out: AppliedEntry[] = []
    const names = domain === undefined ? [...slots.keys()].sort() : [domain]
    for (const name of names) {
      const bySeq = slots.get(name)
      if (!bySeq) continue
      for (const [sequence, requestId] of [...bySeq].sort((a, b) => a[0] - b[0])) {
        out.push({ domain: name, sequence, requestId, noop: records.get(requestId)?.noop ?? false })
      }
    }
    return out
  }

  return {
    async apply(claim: ApplyClaim, work: ApplyWork<MemoryTx>): Promise<ApplyOutcome> {
      const decision = decide(claim, state(claim))
      if (decision.kind !== 'run') return decision
      const effects: (() => void)[] = []
      const reply = await work({ onCommit: (effect) => void effects.push(effect) })
      if (!reply) return { kind: 'rolled-back' }
      // The handler awaited: check again, as the SQL stores' constraints do.
      const now = decide(claim, state(claim))
      if (now.kind !== 'run') return now
      const { domain = null, sequence = null } = claim
      records.set(claim.requestId, { requestId: claim.requestId, domain, sequence, noop: claim.noop, reply, appliedAt: Date.now() })
      if (domain !== null && sequence !== null) {
        next.set(domain, sequence + 1)
        let bySeq = slots.get(domain)
        if (!bySeq) slots.set(domain, (bySeq = new Map()))
        bySeq.set(sequence, claim.requestId)
      }
      // Recorded: the request is applied whatever an effect does now. One that throws is logged, and the rest still run.
      for (const effect of effects) {
        try {
          effect()
        } catch (err) {
          console.error(`hono-once: an onCommit effect of ${claim.requestId} threw after its record was committed`, err)
        }
      }
      return { kind: 'applied' }
    },
    nextSequence: async (domain) => next.get(domain) ?? 1,
    nextSequences: async () => Object.fromEntries([...next].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    applied: async (domain) => applied(domain),
    async prune(appliedBefore) {
      let n = 0
      for (const [id, rec] of records) {
        if (rec.appliedAt >= appliedBefore) continue
        records.delete(id)
        if (rec.domain !== null && rec.sequence !== null) slots.get(rec.domain)?.delete(rec.sequence)
        n++
      }
      return n
    },
  }
}
