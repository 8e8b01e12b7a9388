import { mayStillApply, verdictOf } from '../shared/applied.js'
import { problem } from '../shared/problem.js'
import { readReplicaAnswer } from '../shared/quorum.js'
import type { OrderedDomains } from './ordered.js'
import { sendEntry } from './replica-send.js'
import type { CommitRequest, CommitResult, LogEntry, StoredReply } from './types.js'

/** What abandoning a slot needs of the object: its log, its SQL, its env (the signing secret), its commit, one transaction. */
export interface AbandonHost {
  ordered: OrderedDomains
  sql: SqlStorage
  env: Record<string, unknown>
  /** Commits a record (the object's own commit, synchronous). */
  commit: (request: CommitRequest) => CommitResult
  /** Runs `fn` in one storage transaction. */
  transact: <T>(fn: () => T) => T
}

/**
 * What {@link abandonEntry} did: the request id of the abandoned request, or why it would not.
 *
 * @example
 * const r: AbandonResult = { abandoned: false, reason: 'a replica applied it: it cannot be undone' }
 */
export type AbandonResult = { abandoned: true; requestId: string } | { abandoned: false; reason: string }

/**
 * The final answer of an abandoned ordered request: `502 request-abandoned`, `retryable: false`.
 *
 * @param entry - the request's log entry
 * @param requestId - its request id
 * @param detail - why, for the client
 * @returns the reply to commit
 * @example
 * host.commit({ lookup, token, reply: await abandonedReply(entry, requestId, 'Every replica refused it for good…'), … })
 */
export async function abandonedReply(entry: LogEntry, requestId: string, detail: string): Promise<StoredReply> {
  const res = problem('request-abandoned', { detail, instance: entry.request.path.split('?')[0]!, idempotencyKey: entry.key, requestId })
  return { status: res.status, headers: [['content-type', 'application/problem+json']], body: new Uint8Array(await res.arrayBuffer()) }
}

/**
 * An operator's lever for a request that holds up its domain and that no rule ends by itself (a WAF's 403 on
 * its body at every replica, an app that answers it 503 for ever): its slot becomes a no-op every replica
 * records without running anything, and its key's answer the final `request-abandoned` (502,
 * `retryable: false`), as for a poison request. Every replica of the domain is sent the request first and
 * must answer that it did not apply it: refused while a live Worker holds it (its lease), when a replica
 * applied it (that cannot be undone), does not answer, or answers without ruling it out (`in-flight`, a proxy's 5xx
 * page: it may have, or may yet), and for a slot that is not pending.
 *
 * @param host - the object's tables and commit
 * @param domain - the ordering domain
 * @param sequence - the slot, as the status page's stuck head shows it
 * @param now - ms since epoch
 * @returns what was done
 * @example
 * await abandonEntry(host, 'acct-1', 42, Date.now()) // { abandoned: true, requestId: '01…' }
 */
export async function abandonEntry(host: AbandonHost, domain: string, sequence: number, now: number): Promise<AbandonResult> {
  const { ordered, sql } = host
  const entry = ordered.entry(domain, sequence)
  const record = sql
    .exec<{ lookup: string; lease_until: number; ttl_ms: number }>(
      `SELECT lookup, lease_until, expires_at - created_at AS ttl_ms FROM records WHERE domain = ? AND sequence = ? AND state = 'in_flight'`,
      domain,
      sequence,
    )
    .toArray()[0]
  if (!entry || entry.state !== 'pending' || !record) return { abandoned: false, reason: `sequence ${sequence} of ${domain} is not pending` }
  if (record.lease_until > now) return { abandoned: false, reason: `a Worker is sending it until ${new Date(record.lease_until).toISOString()}: try again after that` }
  if (ordered.appliedAnywhere(domain, sequence)) return { abandoned: false, reason: 'a replica applied it, which cannot be undone: the alarm commits its answer' }
  // What the object was told is not enough: an answer may have been lost on its way. Every replica is asked now.
  const unknown = await askReplicas(host, domain, entry)
  if (unknown) return { abandoned: false, reason: unknown }
  const reply = await abandonedReply(entry, entry.requestId, `An operator abandoned this request (sequence ${sequence} of ${domain}); it will not run. Send a new request with a new key.`)
  const token = crypto.randomUUID()
  const done = host.transact(() => {
    // Taken over as the alarm takes a dead Worker's record: only while no one holds its lease.
    const took = sql.exec(`UPDATE records SET token = ? WHERE lookup = ? AND state = 'in_flight' AND lease_until <= ?`, token, record.lookup, now).rowsWritten
    if (took === 0 || ordered.appliedAnywhere(domain, sequence)) return false
    ordered.abandon(domain, sequence)
    return host.commit({ lookup: record.lookup, token, reply, ttlMs: Math.max(1000, record.ttl_ms), order: { acks: [], failed: [] } }).ok
  })
  if (!done) return { abandoned: false, reason: 'its record changed meanwhile: look again' }
  console.error(`hono-once: an operator abandoned request ${entry.requestId} (${domain}#${sequence})`)
  return { abandoned: true, requestId: entry.requestId }
}

/**
 * Sends the entry to every replica of the domain, whatever its state, and reads each answer: undefined when every
 * one said it did not apply it (a refusal, or a gap before it), else why abandoning it is not safe.
 */
async function askReplicas(host: AbandonHost, domain: string, entry: LogEntry): Promise<string | undefined> {
  const plan = host.ordered.plan(domain)
  if (!plan) return `no plan is known for ${domain}`
  for (const replica of host.ordered.replicas(domain)) {
    const sent = await sendEntry(host.env, plan, domain, replica, entry)
    if (!sent.ok) return `${replica.name} did not answer (${sent.reason}): it may have applied it; try again when every replica answers`
    const outcome = readReplicaAnswer(replica.name, sent.reply)
    if (outcome.kind === 'applied' || outcome.kind === 'pruned' || (outcome.kind === 'gap' && outcome.expected > entry.sequence)) {
      return `${replica.name} applied it, which cannot be undone: the alarm commits its answer`
    }
    if (outcome.kind === 'conflict') return `${replica.name} answered a conflict (${outcome.detail}): repair it first`
    if (outcome.kind === 'gap') continue // it has not reached the slot yet
    // Only the receiver's word rules it out: not `in-flight` (another send of it is being applied there now), not a
    // proxy's 5xx page in front of it (the receiver may go on and apply it).
    const { status, headers, body } = sent.reply
    const verdict = verdictOf(status, headers, body, true)
    if (verdict.kind !== 'not-applied' || mayStillApply(verdict.reason, status)) {
      return `${replica.name} answered ${status}${verdict.kind === 'not-applied' && verdict.reason ? ` (${verdict.reason})` : ''}, which does not say it did not apply it: it may be applying it; try again later`
    }
  }
  return undefined
}
