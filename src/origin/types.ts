import type { Principal } from '../shared/principal.js'
import type { StoredReply } from '../shared/reply.js'

export type { StoredReply } from '../shared/reply.js'

/**
 * A request as recorded by a store: its identity, its sequence slot (ordered
 * requests) and its answer.
 *
 * @example
 * const rec: StoredRecord = { requestId: 'r-1', domain: 'a1', sequence: 1, noop: false, reply }
 */
export interface StoredRecord {
  requestId: string
  /** Null for unordered requests. */
  domain: string | null
  /** Null for unordered requests. */
  sequence: number | null
  /** True when the slot was recorded by `Once-Noop: ?1` without running the handler. */
  noop: boolean
  reply: StoredReply
}

/**
 * One applied slot of an ordering domain, as listed by {@link ReceiverStore.applied}.
 *
 * @example
 * const row: AppliedEntry = { domain: 'a1', sequence: 1, requestId: 'r-1', noop: false }
 */
export interface AppliedEntry {
  domain: string
  sequence: number
  requestId: string
  noop: boolean
}

/**
 * What the receiver asks a store to apply: a request id and, for ordered
 * requests, its domain and sequence.
 *
 * @example
 * const claim: ApplyClaim = { requestId: 'r-1', domain: 'a1', sequence: 1, noop: false }
 */
export interface ApplyClaim {
  requestId: string
  /** Set together with `sequence`, or neither. */
  domain?: string | undefined
  sequence?: number | undefined
  /** Record the slot as applied; `work` returns the no-op's answer without running the handler. */
  noop: boolean
}

/**
 * The step a store decides on for a claim, before or instead of running it.
 *
 * @example
 * const d: Decision = { kind: 'gap', expected: 3 }
 */
export type Decision =
  /** Not applied yet, and (ordered) its turn: run it. */
  | { kind: 'run' }
  /** Already applied: answer with the stored reply. */
  | { kind: 'replay'; reply: StoredReply }
  /** Ordered, and earlier sequences are missing: send `expected` first. */
  | { kind: 'gap'; expected: number }
  /** The request id or the slot was applied as something else. */
  | { kind: 'conflict'; detail: string }
  /** The slot was applied, but its record was pruned: the answer is gone. */
  | { kind: 'pruned'; next: number }

/**
 * What {@link ReceiverStore.apply} did: applied the claim (its answer is the
 * one `work` returned), rolled it back because `work` returned no answer to
 * record, or one of the other decisions.
 *
 * @example
 * const outcome = await store.apply(claim, work)
 * if (outcome.kind === 'replay') return replayResponse(outcome.reply)
 */
export type ApplyOutcome = { kind: 'applied' } | { kind: 'rolled-back' } | Exclude<Decision, { kind: 'run' }>

/**
 * The unit of work a store runs inside its transaction: the handler, given
 * the store's transaction handle. It returns the answer to record with the
 * claim, or undefined to roll everything back (a 5xx, 408, 429 or a thrown
 * error: the edge will retry with the same request id). A thrown error also
 * rolls back, and is rethrown by `apply`.
 *
 * @example
 * const work: ApplyWork<MemoryTx> = async (tx) => ({ status: 204, headers: [], body: new Uint8Array() })
 */
export type ApplyWork<Tx> = (tx: Tx) => Promise<StoredReply | undefined>

/**
 * Where `onceReceiver()` keeps its dedupe records and the next expected
 * sequence of each domain, in the same transaction as the handler's own
 * writes. Implement it for another database; see `memoryStore`,
 * `sqliteStore` and `d1Store` for the three models (in-process, an
 * interactive transaction, one atomic batch).
 *
 * A store must guarantee, whatever the concurrency (other isolates or
 * processes included): a request id is recorded at most once; a domain's
 * slot `n` is recorded at most once and only when `n` is the domain's next
 * expected sequence; and the record, the sequence advance and the handler's
 * writes commit together or not at all. A claim that loses a race answers
 * with the decision it would get now (usually `replay`).
 *
 * @typeParam Tx - the transaction handle handed to the handler as `c.var.receiver.tx`
 * @example
 * const store: ReceiverStore<MemoryTx> = memoryStore()
 * app.use('/accounts/*', onceReceiver({ store }))
 */
export interface ReceiverStore<Tx = unknown> {
  /**
   * Decides on `claim` (see {@link Decision}) and, when it is the claim's turn,
   * runs `work` in a transaction and records its answer, atomically.
   */
  apply(claim: ApplyClaim, work: ApplyWork<Tx>): Promise<ApplyOutcome>
  /** The next expected sequence of `domain` (1 for a domain never seen). */
  nextSequence(domain: string): Promise<number>
  /** The next expected sequence of every domain seen. */
  nextSequences(): Promise<Record<string, number>>
  /** Applied slots, ordered by domain then sequence; of one domain when given. */
  applied(domain?: string): Promise<AppliedEntry[]>
  /**
   * Deletes the records applied before `appliedBefore` (ms since the epoch),
   * keeping every domain's next expected sequence. A repeat of a pruned
   * unordered request runs again, and one of a pruned slot gets a
   * `sequence-pruned` problem: prune only past the edge's key TTL.
   *
   * @returns how many records were deleted
   */
  prune(appliedBefore: number): Promise<number>
}

/**
 * What `onceReceiver()` puts on the context as `c.var.receiver` for a deduped request (only then: see
 * {@link ReceiverVariables}).
 *
 * @example
 * app.post('/accounts/:id/deposits', (c) => {
 *   const { requestId, sequence, tx } = c.var.receiver
 *   tx.prepare('INSERT INTO ledger (request_id, seq) VALUES (?, ?)').run(requestId, sequence ?? null)
 *   return c.json({ ok: true }, 201)
 * })
 */
export interface ReceiverContext<Tx = unknown> {
  /** `Once-Request-Id`: the same on every attempt of one logical request. */
  requestId: string
  /** The client's `Idempotency-Key` when the edge forwarded it, unquoted (`"k-1"` → `k-1`). */
  key?: string | undefined
  /** `Once-Domain` of an ordered request. */
  domain?: string | undefined
  /** `Once-Sequence` of an ordered request. */
  sequence?: number | undefined
  /** `Once-Attempt`, 1 when absent. */
  attempt: number
  /**
   * Who made the request, as the edge authenticated it (`Once-Principal`):
   * `{ iss, sub }` of a verified JWT or `{ scope }`; undefined when the
   * request carries none. Trust it only with `secrets` set (the signature covers it).
   */
  principal?: Principal | undefined
  /** The store's transaction: write through it so the writes commit with the dedupe record. */
  tx: Tx
}

/**
 * Context variables set by `onceReceiver()`; use as `new Hono<{ Variables: ReceiverVariables<SqliteTx> }>()`
 * to type `c.var.receiver.tx`.
 *
 * `receiver` is typed as always there, for the routes the receiver dedupes, but it is set only on a deduped
 * request: on one the receiver passes through (GET, HEAD, OPTIONS, TRACE; without `secrets`, a request with no
 * `Once-Request-Id`) it is undefined. A handler that also serves such requests checks `c.get('receiver')` first, and
 * reads the caller of a read with `parsePrincipal(c.req.header('once-principal'))`.
 *
 * @example
 * const app = new Hono<{ Variables: ReceiverVariables<DatabaseSync> }>()
 */
export interface ReceiverVariables<Tx = unknown> {
  receiver: ReceiverContext<Tx>
}

declare module 'hono' {
  interface ContextVariableMap {
    receiver: ReceiverContext
  }
}
