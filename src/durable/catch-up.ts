import { replayFilter } from '../shared/reply.js'
import { aboutRequest, answerPruned, type ProblemAbout, replyLost } from '../shared/applied.js'
import { digestHex } from '../shared/digest.js'
import { quorumOf, readReplicaAnswer } from '../shared/quorum.js'
import type { OriginReply } from '../shared/types.js'
import type { OrderedDomains } from './ordered.js'
import { Replies } from './feed-replies.js'
import { sendEntry } from './replica-send.js'
import { type AbandonHost, abandonedReply } from './abandon.js'
import type { DivergenceEvent, LogEntry, RelayPlan, ReplicaView, ReplyPolicy, StoredReply } from './types.js'

/** What the catch-up needs from the object it runs in: what an abandon needs, and the time its run began. */
export interface CatchUpHost extends AbandonHost {
  now: number
}

/**
 * Entries one replica is fed per domain and alarm run; the alarm comes back (a second later) for the rest.
 *
 * @example
 * Math.ceil(entries / FEED_BATCH) // alarm runs that bring a joining replica up to date on one domain
 */
export const FEED_BATCH = 100
/**
 * Body bytes one feed holds at most (a logged body may be up to 1 MiB): with {@link FEEDS_IN_PARALLEL} feeds, 32 MiB
 * of an object's 128 MB. The rest of the batch waits for the next run.
 */
const FEED_BATCH_BYTES = 8 * 1024 * 1024
/** Replicas fed in parallel per alarm run (the object's outgoing connections are few). */
const FEEDS_IN_PARALLEL = 4
/**
 * Replica and domain pairs fed per alarm run at most, the least recently fed first (an object holding many
 * domains joins a replica to them over several runs).
 *
 * @example
 * FEEDS_PER_RUN * FEED_BATCH // entries one alarm run sends at most
 */
export const FEEDS_PER_RUN = 16
/** Pending ordered requests finished per alarm run. */
const FINISH_PER_RUN = 8
/** How long every replica in rotation must refuse a request for good before it is poison (DESIGN §6), by default. */
const POISON_AFTER_MS = 600_000
/** The lease the alarm holds while it finishes a request. */
const LEASE_MARGIN_MS = 5000

/**
 * The alarm's work for ordering domains (seed 000: bringing a backup up to
 * date from the request history; seed 004: re-requesting missing
 * transactions):
 *
 * 1. every replica behind the head (lagging, joining, or active but missed
 *    a request) is sent the log entries it lacks, in order; a joining or
 *    lagging replica that reaches the head becomes `active`; one whose
 *    needs lie before the pruned part of the log becomes `stale` (it needs a
 *    resync from a snapshot), one whose history differs `suspect`;
 * 2. every ordered request whose Worker died or gave up (its lease ran out,
 *    it was never released) is finished: once a quorum of replicas has
 *    answered it, the first answer is committed for the client's retry; if
 *    every replica in rotation refused it for good (`handler-failed`,
 *    `body-too-large`, an app's own 500) over `poisonAfterMs` (default 10 minutes), it is a poison
 *    request: committed as a 502 (`retryable: false`) and its slot turned
 *    into a no-op every replica records, so the domain never stalls.
 *
 * Every answer is read by the one rule (`shared/applied.ts`). Sends are
 * bounded: a replica that fails is tried again after a backoff (2 s,
 * doubling, at most 5 minutes, per replica and entry), and a replica that
 * acknowledged an entry is not sent it again.
 *
 * Idempotent, as alarms run at least once: replicas dedupe by request id.
 *
 * @param host - the object's tables and commit
 * @example
 * await catchUpDomains({ ordered, sql, env, commit, now: Date.now() })
 */
export async function catchUpDomains(host: CatchUpHost): Promise<void> {
  const replies = new Replies()
  // A pair another run of this object is still feeding (an alarm run by hand, as tests and operators may, while the
  // scheduled one awaits its sends) is left to it: two feeds would send the same entries twice.
  const busy = feeding.get(host.ordered) ?? new Set<string>()
  feeding.set(host.ordered, busy)
  const behind = host.ordered
    .behind(host.now)
    .filter((b) => !busy.has(`${b.domain}\n${b.replica.name}`))
    .slice(0, FEEDS_PER_RUN)
  for (let i = 0; i < behind.length; i += FEEDS_IN_PARALLEL) {
    await Promise.all(
      behind.slice(i, i + FEEDS_IN_PARALLEL).map(async (b) => {
        const pair = `${b.domain}\n${b.replica.name}`
        busy.add(pair)
        try {
          await feed(host, b.domain, b.replica, b.head, b.prunedThrough, replies)
        } finally {
          busy.delete(pair)
        }
      }),
    )
  }
  const pending = host.sql
    .exec<Pending>(
      `SELECT rec.lookup, rec.token, rec.request_id, rec.domain, rec.sequence, rec.expires_at - rec.created_at AS ttl_ms FROM records rec
       JOIN log l ON l.domain = rec.domain AND l.sequence = rec.sequence
       WHERE rec.state = 'in_flight' AND rec.sequence IS NOT NULL AND rec.lease_until <= ?1 AND coalesce(l.retry_at, 0) <= ?1
       ORDER BY rec.sequence LIMIT ?2`,
      host.now,
      FINISH_PER_RUN,
    )
    .toArray()
  for (const p of pending) await completePending(host, p, replies)
  host.ordered.promote(Date.now())
}

/** Per object (its ordered domains), the domain and replica pairs a feed is under way for. */
const feeding = new WeakMap<OrderedDomains, Set<string>>()

/** A pending ordered request the alarm may finish. */
interface Pending extends Record<string, SqlStorageValue> {
  lookup: string
  token: string | null
  request_id: string
  domain: string
  sequence: number
  /** The route's TTL: it counts from the commit. */
  ttl_ms: number
}

/** Feeds one replica the entries it lacks, in order, one batch per alarm run, as far as it goes without a failure. */
async function feed(
  host: CatchUpHost,
  domain: string,
  replica: ReplicaView,
  head: number,
  prunedThrough: number,
  replies: Replies,
): Promise<void> {
  const plan = host.ordered.plan(domain)
  if (!plan) return
  const { ordered } = host
  let from = Math.max(replica.acked + 1, prunedThrough + 1)
  if (from > head) {
    // The log keeps nothing it lacks (every entry it needs was pruned): a joining replica cannot be fed, it needs a
    // resync; another (set back to lagging after a restore) waits, with backoff, for the next entry to prove itself.
    if (ordered.entries(domain, from, from).length > 0) return // the next entry is still a live Worker's: wait for it
    if (replica.state !== 'joining') return ordered.deferReplica(domain, replica.name, Date.now())
    const reason = `it needs sequences ${replica.acked + 1}–${prunedThrough}, which the log has pruned: restore it from a snapshot of another replica, then setReplica(domain, name, 'lagging')`
    return ordered.setState(domain, replica.name, 'stale', reason, Date.now())
  }
  for (let rewinds = 0; rewinds < 3; rewinds++) {
    const entries = ordered.entries(domain, from, Math.min(head, from + FEED_BATCH - 1), FEED_BATCH_BYTES)
    let rewind: number | undefined
    for (const read of entries) {
      // A push or a write may have removed it, or moved its name to another URL, while the batch was on its way.
      if (!ordered.feeds(domain, replica)) return
      // And the entry itself may have changed: an operator's abandon (or the poison rule) makes it a no-op, which is
      // what must be sent from then on. Read afresh before each send, as a live gap fill does.
      const entry = ordered.entry(domain, read.sequence)
      if (!entry) return
      const sent = await sendEntry(host.env, plan, domain, replica, entry)
      if (!sent.ok) return ordered.deferReplica(domain, replica.name, Date.now())
      const outcome = readReplicaAnswer(replica.name, sent.reply)
      // Its own backoff, not a Retry-After: a replica back from maintenance sooner than it said must not wait past the
      // log's retention (and turn stale) or out of rotation that long.
      if (outcome.kind === 'failed') return ordered.deferReplica(domain, replica.name, Date.now())
      if (outcome.kind === 'conflict') return ordered.setState(domain, replica.name, 'suspect', `sequence ${entry.sequence}: ${outcome.detail}`, Date.now())
      if (outcome.kind === 'gap') {
        if (outcome.expected >= entry.sequence) {
          return ordered.setState(domain, replica.name, 'suspect', `at sequence ${entry.sequence} it expects ${outcome.expected}: its history is ahead of the log`, Date.now())
        }
        if (outcome.expected <= prunedThrough) {
          return ordered.setState(
            domain,
            replica.name,
            'stale',
            `it needs sequence ${outcome.expected}, but the log begins at ${prunedThrough + 1}: restore it from a snapshot of another replica, then setReplica(domain, name, 'lagging')`,
            Date.now(),
          )
        }
        // It is further behind than recorded (restored from an older snapshot): go back to where it is.
        ordered.setState(domain, replica.name, replica.state === 'active' ? 'lagging' : replica.state, `behind: it needs ${outcome.expected}`, Date.now(), outcome.expected - 1)
        rewind = outcome.expected
        break
      }
      if (outcome.kind === 'applied') {
        const events = warned(host.transact(() => ordered.acknowledge(domain, entry.sequence, entry.requestId, [outcome.ack], [], Date.now())))
        replies.keep(`${domain}\n${entry.sequence}`, { origin: replica.name, reply: outcome.reply })
        // It just became suspect: feeding it more would only spread the divergence.
        if (events.some((e) => e.origin === replica.name)) return
      } else {
        ordered.advance(domain, replica.name, entry.sequence, Date.now()) // pruned at the replica: applied, answer gone
      }
    }
    if (rewind === undefined) {
      // One batch per run. Having reached the head it was given, it is active again, though writes admitted since
      // (a busy domain always has some) are not yet its: they come to it as to any active replica that missed one.
      if (entries.at(-1)?.sequence === head) ordered.promote(Date.now(), { domain, name: replica.name, head })
      return
    }
    from = rewind
  }
}

/** Finishes an ordered request its Worker left: commits a quorum's answer, or abandons a poison request. */
async function completePending(host: CatchUpHost, p: Pending, replies: Replies): Promise<void> {
  const { ordered, sql } = host
  const entry = ordered.entry(p.domain, p.sequence)
  const plan = ordered.plan(p.domain)
  if (!entry || !plan) return
  const now = Date.now()
  const token = crypto.randomUUID()
  // Guarded on the token it had: a client retry that took the record over first keeps it.
  const took = sql.exec(
    `UPDATE records SET token = ?, attempt = attempt + 1, lease_until = ? WHERE lookup = ? AND state = 'in_flight' AND token IS ? AND lease_until <= ?`,
    token,
    now + plan.deadlineMs + LEASE_MARGIN_MS,
    p.lookup,
    p.token,
    now,
  ).rowsWritten
  if (took === 0) return
  const inRotation = ordered.replicas(p.domain).filter((r) => r.state === 'active' || r.state === 'lagging' || r.state === 'joining')
  const answered = new Set(
    sql.exec<{ origin: string }>('SELECT origin FROM results WHERE domain = ? AND sequence = ?', p.domain, p.sequence).toArray().map((r) => r.origin),
  )
  let first = replies.get(`${p.domain}\n${p.sequence}`)
  // Send it to the replicas whose turn it is (everything before it applied). A replica that acknowledged it is asked
  // again only while no answer is known at all (its Worker died with it): it replays, and one such answer is enough.
  const got: { origin: string; reply: OriginReply; digest: string }[] = first ? [{ ...first, digest: digestHex(first.reply.body) }] : []
  let tried = 0
  let refused = 0
  let gone = 0
  const ask = async (r: ReplicaView): Promise<void> => {
    tried++
    const sent = await sendEntry(host.env, plan, p.domain, r, entry)
    const outcome = sent.ok ? readReplicaAnswer(r.name, sent.reply) : undefined
    if (outcome?.kind === 'pruned') {
      // Applied there, its record since pruned (the request waited past the replica's retention): an acknowledgement
      // without an answer to compare or commit.
      ordered.advance(p.domain, r.name, p.sequence, Date.now())
      answered.add(r.name)
      gone++
      return
    }
    if (outcome?.kind !== 'applied') {
      // Only a refusal that will not pass by itself counts towards poison; a temporary or lost answer says nothing.
      if (outcome?.kind === 'failed' && outcome.permanent) refused++
      return
    }
    warned(host.transact(() => ordered.acknowledge(p.domain, p.sequence, p.request_id, [outcome.ack], [], Date.now())))
    answered.add(r.name)
    got.push({ origin: r.name, reply: outcome.reply, digest: outcome.ack.digest })
    first ??= { origin: r.name, reply: outcome.reply }
  }
  for (const r of inRotation) {
    const turn = r.acked === p.sequence - 1
    if (turn || (r.acked >= p.sequence && !answered.has(r.name) && !first)) await ask(r)
  }
  const active = inRotation.filter((r) => r.state === 'active').length
  const need = quorumOf(plan.ackQuorum ?? 1, active || inRotation.length)
  // The TTL counts from the commit, like every record's.
  const ttlMs = Math.max(1000, p.ttl_ms)
  const commit = (reply: StoredReply, from?: { origin: string; reply: OriginReply }) => {
    // The answer the reply is made from is the log entry's reference (its ack is recorded already).
    const reference = from && got.find((g) => g.origin === from.origin)
    const acks = reference ? [{ origin: reference.origin, status: reference.reply.status, digest: reference.digest }] : []
    const result = host.commit({ lookup: p.lookup, token, reply, ttlMs, order: { acks, failed: [] } })
    if (result.ok) warned(result.divergences ?? [])
    return result
  }
  // With a quorum of more than one, the committed answer is one a majority of the replicas gave (as in the Worker).
  // With ackQuorum 1, the answer the client got when the Worker reported it (the slot's reference), else the first.
  const reference = ordered.reference(p.domain, p.sequence)
  const asReference = (g: { reply: OriginReply; digest: string }) => !reference || (g.reply.status === reference.status && g.digest === reference.digest)
  const choose = () => ((plan.ackQuorum ?? 1) === 1 ? got.find(asReference) : majorityAnswer(sql, p, got, Math.floor((active || inRotation.length) / 2) + 1))
  let chosen = choose()
  // Enough replicas acknowledged it (their answers reached the object: gap fill by a later write, the Worker's
  // background report after its commit failed, a feed of an earlier run), but no answer is in hand to commit: a
  // replica that acknowledged it replays its answer, so ask those, one at a time, until one will do.
  for (const r of inRotation) {
    if (chosen || answered.size < need) break
    if (r.acked < p.sequence || got.some((g) => g.origin === r.name)) continue
    await ask(r)
    chosen = choose()
  }
  if (chosen && answered.size >= need) {
    commit(storedFrom(chosen, plan.reply, p.sequence, aboutRequest(entry.request, entry)), chosen)
    return
  }
  if (!chosen && gone > 0 && answered.size >= need) {
    // A quorum applied it and no answer is left anywhere: the one final "applied, reply not kept".
    commit(answerPruned(p.sequence, aboutRequest(entry.request, entry)))
    return
  }
  // A poison request (DESIGN §6): it is next in line at every replica in rotation, and every one of them refused it
  // for good (the app threw on it, or its body is over the receiver's limit), from a first such round to one at least
  // poisonAfterMs later. A replica that is down, backing off, answers a temporary refusal or loses its answer makes
  // the round not count.
  const headOfLine = inRotation.length > 0 && inRotation.every((r) => r.acked === p.sequence - 1)
  const everyoneRefused = headOfLine && tried === inRotation.length && refused === tried && !ordered.appliedAnywhere(p.domain, p.sequence)
  const poisonAfterMs = plan.poisonAfterMs ?? POISON_AFTER_MS
  // Counted only on a round everyone refused (its first sets the start); the rounds back off, so the wait is the time
  // since that start as it went (10 to 15 minutes by default), which the message states, not poisonAfterMs.
  const since = everyoneRefused ? ordered.refusedSince(p.domain, p.sequence, now) : now
  if (everyoneRefused && now - since >= poisonAfterMs) {
    const why = `Every replica refused this request for good (sequence ${p.sequence} of ${p.domain}) for ${Math.round((now - since) / 1000)} s, since ${new Date(since).toISOString()}; it was abandoned and will not run. Send a new request with a new key.`
    const reply = await abandonedReply(entry, p.request_id, why)
    host.transact(() => {
      ordered.abandon(p.domain, p.sequence)
      commit(reply)
    })
    console.error(`hono-once: abandoned poison request ${p.request_id} (${p.domain}#${p.sequence})`)
    return
  }
  // Not yet: free the record for a client retry meanwhile, and come back after a backoff.
  host.transact(() => {
    sql.exec(`UPDATE records SET lease_until = ? WHERE lookup = ? AND token = ?`, Date.now(), p.lookup, token)
    ordered.deferEntry(p.domain, p.sequence, Date.now())
  })
}

/**
 * Logs the divergences the alarm found: they run in the object, where no `onDivergence` is (the replica is
 * `suspect`, with its reason, on the status page).
 */
function warned(events: DivergenceEvent[]): DivergenceEvent[] {
  for (const e of events) console.warn(`hono-once: replica ${e.origin} diverged at ${e.domain}#${e.sequence}: ${e.status} vs ${e.expected.status} (found by the alarm)`)
  return events
}

/** Among the answers in hand, one whose status and body digest at least `agree` replicas gave (by the answers recorded). */
function majorityAnswer(
  sql: SqlStorage,
  p: Pending,
  got: { origin: string; reply: OriginReply; digest: string }[],
  agree: number,
): { origin: string; reply: OriginReply } | undefined {
  const rows = sql.exec<{ status: number; digest: string }>('SELECT status, digest FROM results WHERE domain = ? AND sequence = ?', p.domain, p.sequence).toArray()
  return got.find((g) => rows.filter((r) => r.status === g.reply.status && r.digest === g.digest).length >= agree)
}

/**
 * An origin's applied answer as the stable area stores it for replay, by
 * the route's reply policy, as `once()` in the Worker would have kept it:
 * the replayed headers (its allow-list, else all but the never-replayed
 * ones) with `Once-Origin` (and `Once-Sequence` for an ordered request),
 * and a body over `maxReplyBytes` replaced by the final `reply-lost`.
 *
 * @param answer - the origin and its reply
 * @param policy - the route's reply policy, stored with the relay plan
 * @param sequence - the request's sequence, for an ordered one
 * @param about - the request's path, key and request id, for a `reply-lost`
 * @returns the reply to commit
 * @example
 * commit({ lookup, token, reply: storedFrom({ origin: 'eu', reply }, plan.reply), ttlMs })
 */
export function storedFrom(answer: { origin: string; reply: OriginReply }, policy?: ReplyPolicy, sequence?: number, about?: ProblemAbout): StoredReply {
  const allowed = replayFilter(policy?.replayHeaders && new Set(policy.replayHeaders))
  const { reply } = answer
  const kept = policy && reply.body.byteLength > policy.maxReplyBytes ? replyLost(reply.status, `maxReplyBytes (${policy.maxReplyBytes} bytes)`, about) : reply
  const headers: [string, string][] = kept.headers.filter(([name]) => allowed(name) && name !== 'once-applied')
  if (allowed('once-origin')) headers.push(['once-origin', answer.origin])
  if (sequence !== undefined && allowed('once-sequence')) headers.push(['once-sequence', String(sequence)])
  return { status: kept.status, headers, body: kept.body }
}
