/**
 * The one rule "was this request applied?" (DESIGN §6), for everything that
 * reads an origin's answer: failover, hedge, replicate, the relay resend, gap
 * fill and catch-up at the edge, and the status rule that `once()` and the
 * receiver use to decide what to record.
 *
 * @module
 */

/**
 * Whether a status is a final answer when nothing else is known: everything
 * but 5xx, 408 and 429. `once()` commits a local handler's final answer; the
 * receiver records an app's final answer; an origin without the receiver
 * (no `Once-Applied`) is read by this same rule.
 *
 * @param status - an HTTP status code
 * @returns true when the answer is final
 * @example
 * isFinalStatus(422) // true
 * isFinalStatus(503) // false
 */
export function isFinalStatus(status: number): boolean {
  return status < 500 && status !== 408 && status !== 429
}

/**
 * Reads `Once-Applied`, an RFC 8941 Boolean: `?1` true, `?0` false.
 *
 * @param value - the header value, or null when absent
 * @returns the flag; undefined when absent or not a Boolean (then the status decides)
 * @example
 * parseApplied('?1') // true
 * parseApplied(null) // undefined
 */
export function parseApplied(value: string | null): boolean | undefined {
  if (value === null) return undefined
  const v = value.trim()
  if (v === '?1') return true
  if (v === '?0') return false
  return undefined
}

/**
 * What an origin's answer says about its request (DESIGN §6):
 * - `applied`: the recorded result of applying it (`Once-Applied: ?1`, or no
 *   header and a final status): final, never sent again;
 * - `not-applied`: nothing was applied (`Once-Applied: ?0`, or no header and
 *   5xx/408/429): safe to send again, to this origin or another;
 * - `gap`: the origin needs earlier sequences first (409 with
 *   `Once-Expected-Sequence`, whatever `Once-Applied` says).
 * A timeout or a lost answer is none of these: it is unknown, and the
 * request is sent again with the same id.
 *
 * @example
 * const v: AnswerVerdict = { kind: 'gap', expected: 4 }
 */
export type AnswerVerdict = { kind: 'applied' } | { kind: 'not-applied' } | { kind: 'gap'; expected: number }
