import { MAX_LIVE_FILL } from '../../durable/types.js'
import { quorumOf, readReplicaAnswer, type ReplicaOutcome } from '../../shared/quorum.js'
import { attempt, Connections, type EngineInput, retryAfterOf } from '../../shared/attempt.js'
import { failure, missedBy } from '../../shared/outcome.js'
import type { AckQuorum, AttemptRecord, DispatchOutcome, LogEntry, OrderedSlot, Origin, OriginReply, ReplicaAck, ReplicaView } from '../types.js'

/** What the Worker needs to replicate one ordered request. */
export interface ReplicateInput extends EngineInput {
  slot: OrderedSlot
  quorum: AckQuorum
  /** Reads missing log entries (one round trip to the domain's object), for a replica that reports a gap. */
  entries: (from: number, to: number) => Promise<LogEntry[]>
}

/** An acknowledgement of an earlier log entry that gap fill delivered to a replica. */
export interface FilledAck {
  sequence: number
  requestId: string
  ack: ReplicaAck
}

/** The replicas' answers: the quorum's, and a promise of the rest (for the background). */
export interface ReplicateResult {
  outcome: DispatchOutcome
  /** Answers that made the quorum (stored with the commit), the client's answer first (the log entry's reference). */
  acks: ReplicaAck[]
  /**
   * Every replica's outcome, once all are in (or the deadline passed): the
   * quorum's answers again, and the rest; `filled` are the answers to the
   * earlier entries gap fill delivered, to be compared like any other.
   * `failed` and `conflicts` name each replica, and, for one that answered,
   * say what it answered too ({@link missedBy}): the status page's `reason`.
   */
  rest: Promise<{ acks: ReplicaAck[]; failed: string[]; conflicts: string[]; filled: FilledAck[] }>
}

/**
 * `replicate` (seeds 000/001, 002, 004): sends the request to every active
 * replica with `Once-Domain` and `Once-Sequence` on the request itself, so
 * a healthy replica receives exactly one message per logical request. At
 * most 6 sends are in flight at once; one waiting its
 * turn has not started its `timeoutMs`.
 *
 * With `ackQuorum: 1` the client gets the first applied answer. With
 * `'majority'` or `'all'` it gets an answer that a majority of the replicas
 * gave (same status and body digest), once the quorum's answers are in; a
 * minority answer is the divergent one. The others go on in the background
 * (the caller hands `rest` to `waitUntil`).
 *
 * Attempts are bounded (DESIGN §6): per replica at most `maxAttempts` sends
 * of this request, each through the replica's breaker, retries through the
 * replica's retry budget, `Retry-After` honoured. A replica that reports a
 * gap is sent the missing log entries in order (each as the log holds it
 * when it is sent), then the request again. A replica that still has not
 * applied it is left to the stable area's alarm, which resends with backoff.
 *
 * @param ordered - the engine input, the slot (sequence and replicas) and the quorum
 * @returns the client's answer, the quorum's acknowledgements, and the rest to come
 * @example
 * const { outcome, acks, rest } = await replicate({ ...input, slot, quorum: 1, entries })
 * c.executionCtx.waitUntil(rest.then(report))
 */
export async function replicate(ordered: ReplicateInput): Promise<ReplicateResult> {
  const { slot } = ordered
  // The order travels on the request itself (seed 002): no message of its own when nothing fails.
  const input: ReplicateInput = {
    ...ordered,
    wire: { ...ordered.wire, domain: slot.domain, sequence: slot.sequence },
    connections: ordered.connections ?? new Connections(),
    receiverOnly: true,
  }
  const log: AttemptRecord[] = []
  const targets = sendTargets(slot.replicas)
  const counted = targets.filter((r) => r.state === 'active').length || targets.length
  const need = quorumOf(input.quorum, counted)
  // With a quorum of more than one, the answer must be one a majority gave.
  const agree = input.quorum === 1 ? 1 : Math.floor(counted / 2) + 1
  const acks: ReplicaAck[] = []
  const replies = new Map<string, OriginReply>()
  const filled: FilledAck[] = []
  let chosen: { origin: string; reply: OriginReply } | undefined
  let settled = 0
  let resolveQuorum!: () => void
  const quorum = new Promise<void>((r) => (resolveQuorum = r))
  const failed: string[] = []
  const conflicts: string[] = []
  // The sends of earlier log entries (gap fill), by the sequence each delivered: they are not this request's.
  const fills = new Map<AttemptRecord, { sequence: number; applied: boolean }>()

  const tasks = targets.map(async (replica) => {
    const outcome: ReplicaOutcome = await applyAt(input, replica, log, filled, fills).catch((err: unknown) => {
      console.error(`hono-once: replicating to ${replica.name} failed`, err)
      return { kind: 'failed' } as const
    })
    if (outcome.kind === 'applied') {
      acks.push(outcome.ack)
      replies.set(outcome.ack.origin, outcome.reply)
      if (!chosen && acks.length >= need) chosen = majorityOf(acks, agree, replies)
    } else if (outcome.kind === 'conflict') conflicts.push(...missedBy(replica.name, `conflict at sequence ${slot.sequence}: ${outcome.detail}`))
    else if (outcome.kind !== 'pruned') failed.push(...missedBy(replica.name, refusalOf(replica.name, outcome, log, fills, slot.sequence)))
    settled++
    if (chosen || settled === targets.length) resolveQuorum()
  })
  if (targets.length === 0) resolveQuorum()
  await quorum
  // The client's answer first: it is the log entry's reference answer, which two replicas are compared with.
  const quorumAcks = chosen ? [...acks.filter((a) => a.origin === chosen!.origin), ...acks.filter((a) => a.origin !== chosen!.origin)] : [...acks]
  // Every answer, the quorum's included: if the commit never lands, these are what tell the object who applied it.
  const rest = Promise.all(tasks).then(() => ({ acks: [...acks], failed, conflicts, filled }))
  if (chosen) return { outcome: { kind: 'answer', origin: chosen.origin, reply: chosen.reply, attempts: log }, acks: quorumAcks, rest }
  const out = slot.replicas.filter((r) => r.state !== 'active' && r.state !== 'lagging' && r.state !== 'joining')
  const why =
    targets.length === 0
      ? `No replica of domain ${slot.domain} is in rotation (${out.map((r) => `${r.name} ${r.state}`).join(', ') || 'none listed'}): see the status page; an operator repairs a suspect or stale one, then setReplica(domain, name, 'lagging')`
      : quorumAcks.length >= need
      ? `The ${quorumAcks.length} replica answers disagree: none was given by ${agree} replicas`
      : `Only ${quorumAcks.length} of the ${need} replica answers needed came in time`
  return { outcome: failure(log, why, undefined, fills), acks: quorumAcks, rest }
}

/** The first answer that `agree` replicas gave alike (same status and body digest), if any. */
function majorityOf(acks: ReplicaAck[], agree: number, replies: Map<string, OriginReply>): { origin: string; reply: OriginReply } | undefined {
  for (const ack of acks) {
    const alike = acks.filter((a) => a.status === ack.status && a.digest === ack.digest).length
    if (alike >= agree) return { origin: ack.origin, reply: replies.get(ack.origin)! }
  }
  return undefined
}

/** Active replicas get live requests; with none active, the others in rotation do (and are fed on the way). */
function sendTargets(replicas: ReplicaView[]): ReplicaView[] {
  const active = replicas.filter((r) => r.state === 'active')
  return active.length > 0 ? active : replicas.filter((r) => r.state === 'lagging' || r.state === 'joining')
}

/**
 * Sends the request to one replica until it answers finally, filling gaps
 * from the log: at most `maxAttempts` sends of this request, each through
 * the replica's breaker, every retry through the replica's retry budget.
 */
async function applyAt(input: ReplicateInput, replica: ReplicaView, log: AttemptRecord[], filled: FilledAck[], fills: Map<AttemptRecord, { sequence: number; applied: boolean }>): Promise<ReplicaOutcome> {
  const origin: Origin = { name: replica.name, url: replica.url }
  const signal = input.signal ?? new AbortController().signal
  let last: ReplicaOutcome = { kind: 'failed' }
  let notBefore = 0
  for (let n = 0, rounds = 0; n < input.maxAttempts && Date.now() < input.deadline && !signal.aborted; ) {
    if (n > 0) {
      await pause(Math.max(Math.min(1000, 50 * 2 ** n) * (0.5 + Math.random() / 2), notBefore - Date.now()), input.deadline)
      if (!input.health.canRetry(origin.name)) break
    }
    // An open breaker sends nothing: the alarm takes the replica over. A Retry-After it gave another request does
    // not keep it from this one (each write is every replica's to apply; a maintenance page must not outlast the
    // maintenance): this request honours only what the replica answered it.
    if (!input.health.claim(origin.name, Date.now(), false)) {
      log.push({ origin: origin.name, attempt: input.firstAttempt + n, outcome: 'skipped', ms: 0 })
      break
    }
    const result = await attempt(input, origin, input.firstAttempt + n, log, signal)
    n++
    if (!result.ok) continue
    const outcome = readReplicaAnswer(replica.name, result.reply)
    if (outcome.kind === 'gap' && outcome.expected < input.slot.sequence) {
      // A gap answer applied nothing: it does not count as a send of this request.
      n--
      if (++rounds > 2) return { kind: 'failed' }
      const stuck = await fill(input, origin, outcome.expected, log, signal, filled, fills)
      if (stuck) return stuck
      continue
    }
    if (outcome.kind === 'gap') return { kind: 'conflict', detail: `it expects sequence ${outcome.expected}, past ${input.slot.sequence}` }
    if (outcome.kind !== 'failed') return outcome
    last = outcome
    // A refusal for good comes again on every send: the alarm decides on it (poison), not more sends now.
    if (outcome.permanent) break
    const wait = retryAfterOf(result)
    if (wait !== undefined) {
      // It applied nothing and asked this request to wait (a 429's or 503's Retry-After): not before then; past the
      // deadline, the alarm's.
      notBefore = Date.now() + wait
      if (notBefore >= input.deadline) break
    }
  }
  return last
}

/**
 * Sends log entries `from`…`sequence - 1` to a replica, in order, each read from the log just before it is sent (its
 * sends marked in `fills`). Returns nothing when all were applied, else the failure that stopped it: a refusal of an
 * earlier entry for good is the replica's refusal of that one, which this request waits behind.
 */
async function fill(
  input: ReplicateInput,
  origin: Origin,
  from: number,
  log: AttemptRecord[],
  signal: AbortSignal,
  filled: FilledAck[],
  fills: Map<AttemptRecord, { sequence: number; applied: boolean }>,
): Promise<ReplicaOutcome | undefined> {
  const failed: ReplicaOutcome = { kind: 'failed' }
  // A replica further behind (restored from an old snapshot) is the alarm's to feed in batches, not this invocation's.
  if (input.slot.sequence - from > MAX_LIVE_FILL) return failed
  for (let sequence = from; sequence < input.slot.sequence; sequence++) {
    // What the log says now: an entry abandoned meanwhile goes out as the no-op it has become.
    const [entry] = await input.entries(sequence, sequence)
    if (!entry || entry.sequence !== sequence) return failed // pruned from the log: the alarm marks it suspect
    const one: EngineInput = {
      ...input,
      request: entry.request,
      wire: { requestId: entry.requestId, key: entry.key, domain: input.slot.domain, sequence: entry.sequence, noop: entry.noop },
    }
    // Its own log first: the other replicas' tasks push to the shared one meanwhile.
    const mine: AttemptRecord[] = []
    const result = await attempt(one, origin, 1, mine, signal)
    const outcome = result.ok ? readReplicaAnswer(origin.name, result.reply) : undefined
    const applied = outcome?.kind === 'applied' || outcome?.kind === 'pruned'
    for (const record of mine) {
      log.push(record)
      fills.set(record, { sequence, applied })
    }
    if (!outcome) return failed
    if (outcome.kind === 'applied') filled.push({ sequence, requestId: entry.requestId, ack: outcome.ack })
    else if (outcome.kind !== 'pruned') return outcome.kind === 'failed' ? outcome : failed
  }
  return undefined
}

/**
 * What a replica that did not apply the request answered, for the status page: `refused sequence 4 for good (500
 * handler-failed)` (4 may be an earlier entry, sent as gap fill), `did not apply sequence 5 yet (503 …)`; undefined
 * when it gave no answer (a timeout, a reset, an open breaker: the object says "no answer").
 */
function refusalOf(name: string, outcome: ReplicaOutcome, log: AttemptRecord[], fills: Map<AttemptRecord, { sequence: number; applied: boolean }>, sequence: number): string | undefined {
  const last = log.findLast((a) => a.origin === name)
  if (!last || typeof last.outcome !== 'number') return undefined
  const what = `sequence ${fills.get(last)?.sequence ?? sequence}${fills.has(last) ? ` (gap fill before ${sequence})` : ''}`
  const answer = `${last.outcome}${last.reason === undefined ? '' : ` ${last.reason}`}`
  return outcome.kind === 'failed' && outcome.permanent ? `refused ${what} for good (${answer})` : `did not apply ${what} (${answer})`
}

function pause(ms: number, deadline: number): Promise<void> {
  const wait = Math.max(0, Math.min(ms, deadline - Date.now()))
  return new Promise((r) => setTimeout(r, wait))
}

