import { aboutRequest, tooLargeAnswer } from '../shared/applied.js'
import { resolveSecret, sendAttempt } from '../shared/send.js'
import type { LogEntry, RelayPlan } from './types.js'

/**
 * Sends one log entry to one replica as the object does (the alarm's feed and finish, an operator's abandon):
 * signed with the plan's secret from the object's `env`, bounded by the plan's limits; an applied answer over
 * `maxResponseBytes` reads as the final reply-lost. Never unsigned when the plan signs: without its secret it
 * fails as a network error.
 *
 * @example
 * const sent = await sendEntry(env, plan, 'acct-1', { name: 'r1', url }, entry)
 */
export async function sendEntry(env: Record<string, unknown>, plan: RelayPlan, domain: string, replica: { name: string; url: string }, entry: LogEntry) {
  const secret = resolveSecret(plan.secret, env)
  // A resend that cannot resolve its secret never goes out unsigned (DESIGN §6).
  if (plan.secret !== undefined && secret === undefined) {
    console.error(`hono-once: cannot resend ${entry.requestId}: its signing secret is not set in the object's environment`)
    return { ok: false, reason: 'network', ms: 0 } as const
  }
  const result = await sendAttempt({
    origin: replica,
    request: entry.request,
    wire: { requestId: entry.requestId, key: entry.key, domain, sequence: entry.sequence, noop: entry.noop },
    attempt: 1,
    secret,
    timeoutMs: plan.timeoutMs,
    maxResponseBytes: plan.maxResponseBytes,
    signal: new AbortController().signal,
  })
  // An applied answer over the limit is still applied: the final reply-lost (the one rule, shared/applied.ts).
  const lost = !result.ok && result.reason === 'too-large' && result.head ? tooLargeAnswer(result.head, plan.maxResponseBytes, true, aboutRequest(entry.request, entry)) : undefined
  return lost ? ({ ok: true, reply: lost, ms: result.ms } as const) : result
}
