import { digestHex } from '../../shared/digest.js'
import { attempt, type EngineInput, failure, verdictOf } from '../engine.js'
import type { AckQuorum, AttemptRecord, DispatchOutcome, LogEntry, OrderedSlot, Origin, OriginReply, ReplicaAck, ReplicaView } from '../types.js'

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
  | { kind: 'failed' }

/**
 * Reads an ordered answer: a final reply is an acknowledgement (with the
 * body digest divergence is judged on); the receiver's `sequence-pruned`
 * and `sequence-conflict` problems (DESIGN §6) are told apart from a
 * genuine 409 by their problem `type`.
 *
 * @param origin - the replica's name
 * @param reply - its answer
 * @returns what it means for the replica's progress
 * @example
 * readReplicaAnswer('r1', reply) // { kind: 'applied', ack: { origin: 'r1', status: 201, digest: '…' }, reply }
 */
export function readReplicaAnswer(origin: string, reply: OriginReply): ReplicaOutcome {
  const verdict = verdictOf(reply)
  if (verdict.kind === 'gap') return { kind: 'gap', expected: verdict.expected }
  if (verdict.kind === 'retry') return { kind: 'failed' }
  const type = problemType(reply)
  if (reply.status === 409 && type === 'sequence-pruned') return { kind: 'pruned' }
  if (reply.status === 409 && type === 'sequence-conflict') return { kind: 'conflict', detail: 'the replica applied another request in this slot' }
  // Answers that prove nothing was applied are no acknowledgement: the receiver's own refusals (a signature or
  // header it rejects), and what an auth layer or proxy in front of it says (401, 403, 407, 408).
  if (NOT_APPLIED_STATUS.has(reply.status) || (type !== undefined && NOT_APPLIED_TYPES.has(type))) return { kind: 'failed' }
  return { kind: 'applied', reply, ack: { origin, status: reply.status, digest: digestHex(reply.body) } }
}

const NOT_APPLIED_STATUS = new Set([401, 403, 407, 408])
const NOT_APPLIED_TYPES = new Set(['signature-invalid', 'request-id-missing', 'bad-request', 'in-flight', 'store-unavailable', 'sequence-gap'])

function problemType(reply: OriginReply): string | undefined {
  const type = reply.headers.find(([n]) => n === 'content-type')?.[1] ?? ''
  if (!type.includes('problem+json')) return undefined
  try {
    const body = JSON.parse(new TextDecoder().decode(reply.body)) as { type?: unknown }
    return typeof body.type === 'string' ? body.type.slice(body.type.lastIndexOf('/') + 1) : undefined
  } catch {
    return undefined
  }
}

/** What the Worker needs to replicate one ordered request. */
export interface ReplicateInput extends EngineInput {
  slot: OrderedSlot
  quorum: AckQuorum
  /** Reads missing log entries (one round trip to the domain's object), for a replica that reports a gap. */
  entries: (from: number, to: number) => Promise<LogEntry[]>
}

/** The replicas' answers: the quorum's, and a promise of the rest (for the background). */
export interface ReplicateResult {
  outcome: DispatchOutcome
  /** Answers that made the quorum (stored with the commit). */
  acks: ReplicaAck[]
  /** Every replica's outcome, once all are in (or the deadline passed): the quorum's answers again, and the rest. */
  rest: Promise<{ acks: ReplicaAck[]; failed: string[]; conflicts: string[] }>
}

/**
 * `replicate` (seeds 000/001, 002, 004): sends the request to every active
 * replica with `Once-Domain` and `Once-Sequence` on the request itself, so
 * a healthy replica receives exactly one message per logical request. The
 * client is answered with the first final answer once `quorum` replicas
 * have answered finally; the others go on in the background (the caller
 * hands `rest` to `waitUntil`). A replica that reports a gap is sent the
 * missing log entries in order, then the request again; one that keeps
 * failing is left to the stable area's alarm, which catches it up.
 *
 * @param input - the engine input, the slot (sequence and replicas) and the quorum
 * @returns the client's answer, the quorum's acknowledgements, and the rest to come
 * @example
 * const { outcome, acks, rest } = await replicate({ ...input, slot, quorum: 1, entries })
 * c.executionCtx.waitUntil(rest.then(report))
 */
export async function replicate(ordered: ReplicateInput): Promise<ReplicateResult> {
  const { slot } = ordered
  // The order travels on the request itself (seed 002): no message of its own when nothing fails.
  const input: ReplicateInput = { ...ordered, wire: { ...ordered.wire, domain: slot.domain, sequence: slot.sequence } }
  const log: AttemptRecord[] = []
  const targets = sendTargets(slot.replicas)
  const need = quorumOf(input.quorum, targets.filter((r) => r.state === 'active').length || targets.length)
  const acks: ReplicaAck[] = []
  let first: { origin: string; reply: OriginReply } | undefined
  let settled = 0
  let resolveQuorum!: () => void
  const quorum = new Promise<void>((r) => (resolveQuorum = r))
  const failed: string[] = []
  const conflicts: string[] = []

  const tasks = targets.map(async (replica) => {
    const outcome: ReplicaOutcome = await applyAt(input, replica, log).catch((err: unknown) => {
      console.error(`hono-once: replicating to ${replica.name} failed`, err)
      return { kind: 'failed' } as const
    })
    if (outcome.kind === 'applied') {
      acks.push(outcome.ack)
      // The client's answer is the first final one; a replica still catching up counts, a suspect one never answers.
      first ??= { origin: replica.name, reply: outcome.reply }
    } else if (outcome.kind === 'conflict') conflicts.push(replica.name)
    else if (outcome.kind !== 'pruned') failed.push(replica.name)
    settled++
    if (acks.length >= need || settled === targets.length) resolveQuorum()
  })
  if (targets.length === 0) resolveQuorum()
  await quorum
  const quorumAcks = [...acks]
  // Every answer, the quorum's included: if the commit never lands, these are what tell the object who applied it.
  const rest = Promise.all(tasks).then(() => ({ acks: [...acks], failed, conflicts }))
  if (first && quorumAcks.length >= need) {
    return { outcome: { kind: 'answer', origin: first.origin, reply: first.reply, attempts: log }, acks: quorumAcks, rest }
  }
  return { outcome: failure(log, `Only ${quorumAcks.length} of the ${need} replica answers needed came in time`), acks: quorumAcks, rest }
}

/** Active replicas get live requests; with none active, the others in rotation do (and are fed on the way). */
function sendTargets(replicas: ReplicaView[]): ReplicaView[] {
  const active = replicas.filter((r) => r.state === 'active')
  return active.length > 0 ? active : replicas.filter((r) => r.state === 'lagging' || r.state === 'joining')
}

/** Sends the request to one replica until it answers finally or the deadline passes, filling gaps from the log. */
async function applyAt(input: ReplicateInput, replica: ReplicaView, log: AttemptRecord[]): Promise<ReplicaOutcome> {
  const origin: Origin = { name: replica.name, url: replica.url }
  const signal = input.signal ?? new AbortController().signal
  for (let n = 0; Date.now() < input.deadline && !signal.aborted; n++) {
    const result = await attempt(input, origin, input.firstAttempt + n, log, signal)
    if (result.ok) {
      const outcome = readReplicaAnswer(replica.name, result.reply)
      if (outcome.kind === 'gap' && outcome.expected < input.slot.sequence) {
        const filled = await fill(input, origin, outcome.expected, log, signal)
        if (!filled) return { kind: 'failed' }
        continue
      }
      if (outcome.kind === 'gap') return { kind: 'conflict', detail: `it expects sequence ${outcome.expected}, past ${input.slot.sequence}` }
      if (outcome.kind !== 'failed') return outcome
    }
    await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** n) * Math.random()))
  }
  return { kind: 'failed' }
}

/** Sends log entries `from`…`sequence - 1` to a replica, in order. */
async function fill(input: ReplicateInput, origin: Origin, from: number, log: AttemptRecord[], signal: AbortSignal): Promise<boolean> {
  const missing = await input.entries(from, input.slot.sequence - 1)
  if (missing.length === 0 || missing[0]!.sequence !== from) return false // pruned from the log: the alarm marks it suspect
  for (const entry of missing) {
    const one: EngineInput = {
      ...input,
      request: entry.request,
      wire: { requestId: entry.requestId, key: entry.key, domain: input.slot.domain, sequence: entry.sequence, noop: entry.noop },
    }
    const result = await attempt(one, origin, 1, log, signal)
    if (!result.ok) return false
    const outcome = readReplicaAnswer(origin.name, result.reply)
    if (outcome.kind !== 'applied' && outcome.kind !== 'pruned') return false
  }
  return true
}
