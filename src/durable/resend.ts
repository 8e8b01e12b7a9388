import { aboutRequest } from '../shared/applied.js'
import { failover } from '../shared/failover.js'
import { OriginHealth } from '../shared/health.js'
import { resolveSecret } from '../shared/send.js'
import { storedFrom } from './catch-up.js'
import type { Records } from './records.js'
import type { RelayPlan } from './types.js'
import type { DueRelay, Relays } from './relays.js'
import type { Waiters } from '../shared/waiters.js'

/** Rounds of resends the alarm makes before it gives the key back to the client's retry. */
const MAX_RESENDS = 5

/** The longest `Retry-After` a resend round waits for before the next one. */
const MAX_RETRY_AFTER_MS = 3_600_000

/** The lease the alarm holds while resending: the plan's deadline plus this. */
const RESEND_LEASE_MARGIN_MS = 5000

/** Sets of origins whose health one object keeps (one per route that proxies, as a rule). */
const HEALTH_SETS = 64

/**
 * The health of the origins an object resends to, one {@link OriginHealth}
 * (breakers with the default settings, retry tokens) per set of origins,
 * names with their URLs: the relays of one object come from many routes,
 * and two routes may give one name to two origins, whose breakers and
 * tokens must not be one. At most {@link HEALTH_SETS} sets are kept, the
 * least recently used dropped.
 *
 * @example
 * const health = new HealthBySet()
 * health.of(plan.origins).succeeded('eu', 12)
 */
export class HealthBySet {
  readonly #sets = new Map<string, OriginHealth>()

  /** The health of `origins`, made when first asked for. */
  of(origins: RelayPlan['origins']): OriginHealth {
    const key = origins.map(({ name, url }) => `${name} ${url}`).join('\n')
    let health = this.#sets.get(key)
    if (health) this.#sets.delete(key)
    else health = new OriginHealth()
    this.#sets.set(key, health)
    if (this.#sets.size > HEALTH_SETS) this.#sets.delete(this.#sets.keys().next().value!)
    return health
  }
}

/** What a resend needs of the object. */
export interface Resender {
  storage: DurableObjectStorage
  records: Records
  relays: Relays
  /** Health of the origins the alarm resends to, as this object has seen them. */
  health: HealthBySet
  env: unknown
  /** The duplicates waiting on a key, woken when its reply is committed or the key released. */
  waiters: Waiters
}

/**
 * Resends a relay left `processing` by a Worker that died (seed 003's
 * backup relay): takes the record over with a lease of its own, fails over
 * across the stored origins with the same request id (the shared send, as
 * the Worker would), and commits the first final answer, so a client that
 * comes back later gets it as a replay. A round that gets none is retried
 * with backoff; after {@link MAX_RESENDS} rounds the key is released for
 * the client's retry. The next round waits at least as long as the origins
 * asked (`Retry-After`, up to an hour). A refusal for good ends the resends
 * only when no attempt of the round may have applied the request (see
 * `refused`).
 *
 * @param host - the object's records, relays, origin health and env
 * @param due - the relay to resend
 * @example
 * await Promise.all(relays.due(now, 4).map((due) => resendRelay(host, due)))
 */
export async function resendRelay(host: Resender, due: DueRelay): Promise<void> {
  const { lookup, plan } = due
  const now = Date.now()
  const token = crypto.randomUUID()
  // The takeover is guarded on the dead Worker's token: a client retry that took the key first wins.
  if (!host.records.takeOver(lookup, due.token, token, now + plan.deadlineMs + RESEND_LEASE_MARGIN_MS, now)) return
  const outcome = await failover({
    origins: plan.origins,
    request: due.request,
    wire: { requestId: due.requestId, key: due.key },
    health: host.health.of(plan.origins),
    secret: resolveSecret(plan.secret, host.env),
    timeoutMs: plan.timeoutMs,
    deadline: now + plan.deadlineMs,
    maxAttempts: plan.maxAttempts,
    maxResponseBytes: plan.maxResponseBytes,
    firstAttempt: due.sends + 1,
    // A relay is a write: signed, an answer without Once-Applied is not the receiver's (as in the Worker).
    receiverOnly: plan.secret !== undefined,
  })
  const sends = due.sends + outcome.attempts.length
  // An answer is applied by the one rule (failover returns no other): commit it, whatever its status.
  if (outcome.kind === 'answer') {
    const committed = host.records.commit({ lookup, token, reply: storedFrom(outcome, plan.reply, undefined, aboutRequest(due.request, due)), ttlMs: due.ttlMs, relay: { sends } })
    if (committed.ok) host.waiters.wake(lookup)
    return
  }
  console.warn(`hono-once: resend of ${due.requestId} got no final answer (round ${due.resends + 1}): ${outcome.detail}`)
  host.storage.transactionSync(() => {
    // Refused for good (the app throws on it, its body is over the limit): another round would be refused again.
    if (due.resends + 1 >= MAX_RESENDS || outcome.refusal) {
      host.records.release(lookup, token, undefined, Date.now())
      host.relays.release(lookup, sends)
    } else {
      // The key is free for a client retry meanwhile; the alarm tries again after a backoff.
      host.records.endLease(lookup, token, Date.now())
      // Not before the origins asked (Retry-After: maintenance, overload), up to an hour; else a growing backoff.
      const backoff = Math.min(60_000, 2000 * 2 ** due.resends)
      host.relays.defer(lookup, sends, Date.now() + Math.max(backoff, Math.min(MAX_RETRY_AFTER_MS, outcome.retryAfterMs ?? 0)))
    }
  })
  host.waiters.wake(lookup)
}
