import { hasApplied, refusedBeforeTheReceiver, verdictOf } from './applied.js'
import { digestHex } from './digest.js'
import type { AckQuorum, OriginReply, ReplicaAck } from './types.js'

/**
 * How many replica answers make a quorum out of `n` replicas.
 *
 * @param quorum - `1`, `'majority'` or `'all'`
 * @param n - replicas that count
 * @returns answers needed (at least 1)
 * @example
 * quorumOf('majority', 3) // 2
 */
export function quorumOf(quorum: AckQuorum, n: number): number {
  if (n <= 0) return 1
  return quorum === 'all' ? n : quorum === 'majority' ? Math.floor(n / 2) + 1 : 1
}

/** What a replica's answer says about the sequence it was sent (beyond the HTTP verdict). */
export type ReplicaOutcome =
  | { kind: 'applied'; reply: OriginReply; ack: ReplicaAck }
  /** The receiver pruned its record of this slot: applied, answer gone. */
  | { kind: 'pruned' }
  /** The replica's history differs from the log (another request in this slot). */
  | { kind: 'conflict'; detail: string }
  | { kind: 'gap'; expected: number }
  /** Nothing applied; `permanent` when it will not pass by itself (DESIGN §6: what counts towards poison). */
  | { kind: 'failed'; permanent?: boolean }

/**
 * Reads an ordered answer by the one rule (`shared/applied.ts`): an applied
 * answer is an acknowledgement (with the body digest divergence is judged
 * on); `sequence-pruned` is applied with its answer gone; a refusal of
 * type `sequence-conflict` means the replica's history differs.
 *
 * A replica runs `onceReceiver()` (only the receiver keeps the order), which
 * marks every answer with `Once-Applied`. An answer without it is not the
 * replica's: a redirect of its load balancer, a proxy's or WAF's page, a
 * host that is not the receiver. It is no acknowledgement, whatever its
 * status (the one rule's fallback for origins without the receiver does not
 * apply here): a failed send, so the replica lags and is fed again later.
 *
 * @param origin - the replica's name
 * @param reply - its answer
 * @returns what it means for the replica's progress
 * @example
 * readReplicaAnswer('r1', reply) // { kind: 'applied', ack: { origin: 'r1', status: 201, digest: '…' }, reply }
 */
export function readReplicaAnswer(origin: string, reply: OriginReply): ReplicaOutcome {
  const verdict = verdictOf(reply.status, reply.headers, reply.body)
  if (verdict.kind === 'gap') return { kind: 'gap', expected: verdict.expected }
  if (verdict.kind === 'applied') {
    if (verdict.answerGone) return { kind: 'pruned' }
    // Not the receiver's word: a server or proxy before it answered (a 431 for headers over its limit is so for good).
    if (!hasApplied(reply.headers)) return { kind: 'failed', permanent: refusedBeforeTheReceiver(reply.status) }
    return { kind: 'applied', reply, ack: { origin, status: reply.status, digest: digestHex(reply.body) } }
  }
  if (verdict.reason === 'sequence-conflict') return { kind: 'conflict', detail: 'the replica applied another request in this slot' }
  return { kind: 'failed', permanent: verdict.permanent }
}
