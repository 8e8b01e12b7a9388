import type { AttemptRecord, DispatchOutcome, Origin, OriginReply } from './types.js'
import { mayStillApply, UNMARKED } from './applied.js'

/** Attempt outcomes without an answer: they say nothing of whether the origin applied the request, so it may have. */
const UNKNOWN: ReadonlySet<AttemptRecord['outcome']> = new Set(['timeout', 'network', 'aborted'])

/** Whether an attempt may have applied the request: it got no answer, or one that does not rule it out ({@link mayStillApply}). */
function mayHaveApplied(a: AttemptRecord): boolean {
  return UNKNOWN.has(a.outcome) || (typeof a.outcome === 'number' && mayStillApply(a.reason, a.outcome))
}

/**
 * The outcome of a request an origin refused for good: failed, with the
 * refusal to pass on (its own status and problem, `retryable: false`), but
 * only when no origin may have applied it. An attempt that ended without an
 * answer (a timeout, a reset, an abort) may have applied it: then the
 * client gets a retryable failure instead, and its retry (same key, same
 * `Once-Request-Id`) learns from the origins what happened; so may an
 * origin busy with this very request (`in-flight`), and one whose answer
 * is a proxy's 5xx page without the receiver's mark. "Nothing was applied,
 * do not retry" is said only when it is known.
 *
 * @param log - the attempt log
 * @param origin - the origin that refused
 * @param refusal - its answer
 * @param retryAt - when the origins that asked to wait are ready again (epoch ms), for the retryable failure
 * @returns the failed outcome
 * @example
 * return refused(log, origin, refusal)
 */
export function refused(log: AttemptRecord[], origin: Origin, refusal: OriginReply, retryAt?: number): DispatchOutcome {
  if (log.some(mayHaveApplied)) {
    return failure(log, `${origin.name} refused the request for good (${refusal.status}), but an attempt that got no answer, or an origin still applying it (or a proxy's error page in front of it), may have applied it; retry with the same key`, retryAt)
  }
  return { kind: 'failed', status: 502, detail: `No origin applied the request; ${origin.name}'s answer is passed on (${outcomes(log)})`, attempts: log, refusal: { origin: origin.name, reply: refusal } }
}

/**
 * The failure a client sees when no attempt got a final answer: 504 when
 * every attempt timed out, else 502. The `detail` stays short: each origin
 * once, with its number of sends and the last outcome.
 *
 * @param log - the attempt log
 * @param why - the first sentence
 * @param retryAt - when the origins asked the request to come back (`Retry-After`), if they did
 * @param fills - the sends in `log` that were not of this request but of earlier entries of its ordering domain (gap
 *   fill), by sequence: summed up apart, as what the request waits behind
 * @returns the failed outcome
 * @example
 * failure(log, 'No origin gave a final answer') // detail: 'No origin gave a final answer (eu: 503 ×3; us: timeout)'
 */
export function failure(log: AttemptRecord[], why: string, retryAt?: number, fills?: GapFills): DispatchOutcome {
  const timeouts = log.filter((a) => a.outcome === 'timeout').length
  const status = log.length === 0 || timeouts === log.length ? 504 : 502
  // A refused signature is a setup fault no retry mends by itself: say where to look, not only the status.
  const hint =
    (log.some((a) => a.reason !== undefined && SIGNATURE_REFUSALS.has(a.reason)) ? SIGNATURE_HINT : '') +
    (log.some((a) => a.reason === UNMARKED) ? UNMARKED_HINT : '')
  const own = fills ? log.filter((a) => !fills.has(a)) : log
  const outcome: DispatchOutcome = { kind: 'failed', status, detail: `${why}${own.length > 0 ? ` (${outcomes(own)})` : ''}${behind(fills)}${hint}`, attempts: log }
  if (retryAt !== undefined) outcome.retryAfterMs = Math.max(0, retryAt - Date.now())
  return outcome
}

/**
 * The failure when every origin asked to wait (`Retry-After`) past what is
 * left of the deadline: the client is told the earliest one.
 *
 * @param log - the attempt log
 * @param at - the earliest time an origin may be sent the request again
 * @returns the failed outcome, with `retryAfterMs`
 * @example
 * return waitedOut(log, at)
 */
export function waitedOut(log: AttemptRecord[], at: number): DispatchOutcome {
  return failure(log, 'Every origin asked to wait (Retry-After) past the deadline', at)
}

/**
 * The sends of an ordered request's attempt log that were gap fill (earlier entries of its domain sent first), each
 * with the sequence it delivered and whether that replica applied it.
 *
 * @example
 * const fills: GapFills = new Map([[record, { sequence: 4, applied: false }]])
 */
export type GapFills = ReadonlyMap<AttemptRecord, { sequence: number; applied: boolean }>

/**
 * What gap fill met, sequence by sequence (`. The replicas were first sent … sequence 4 (eu: 500 handler-failed)`),
 * and, when a replica did not apply one, that the request waits behind it; '' when it sent none.
 */
function behind(fills: GapFills | undefined): string {
  if (!fills || fills.size === 0) return ''
  const sends = [...fills]
  const sequences = [...new Set(sends.map(([, f]) => f.sequence))].sort((a, b) => a - b)
  const each = sequences.map((s) => `sequence ${s} (${outcomes(sends.filter(([, f]) => f.sequence === s).map(([a]) => a))})`)
  // Waited behind: an entry a replica's last fill send of it did not apply.
  const last = new Map<string, { sequence: number; applied: boolean }>()
  for (const [a, f] of sends) last.set(`${a.origin}\n${f.sequence}`, f)
  const stuck = [...new Set([...last.values()].filter((f) => !f.applied).map((f) => f.sequence))].sort((a, b) => a - b)
  const wait = stuck.length === 0 ? '' : `; it waits behind sequence ${stuck.join(', ')}, and goes through once ${stuck.length > 1 ? 'those are' : 'that one is'} applied, or abandoned (poison, or an operator's abandon): retry with the same key`
  return `. The replicas were first sent the earlier request${sequences.length > 1 ? 's' : ''} of its domain (gap fill): ${each.join(', ')}${wait}`
}

/**
 * A replica that did not apply an ordered request, as the Worker reports it to the domain's object: its name, and
 * with what it answered (`refused sequence 4 for good (500 handler-failed)`) its name again followed by a space and
 * that text. The bare name is what an object of an earlier release reads ("no answer"); it finds no replica by the
 * other (a name has no space), which only a later one reads ({@link missesOf}).
 *
 * @param name - the replica
 * @param why - what it answered, if it did
 * @returns the entries for the `failed` list
 * @example
 * missedBy('eu', 'refused sequence 4 for good (500 handler-failed)') // ['eu', 'eu refused sequence 4 for good (500 handler-failed)']
 */
export function missedBy(name: string, why?: string): string[] {
  return why === undefined ? [name] : [name, `${name} ${why}`]
}

/**
 * Reads a `failed` list ({@link missedBy}): replica name → what it answered (undefined: no answer).
 *
 * @param failed - bare names, and names followed by a space and what they answered
 * @returns each replica once
 * @example
 * missesOf(['eu', 'eu refused sequence 4 for good (500 handler-failed)', 'us']) // Map { 'eu' → 'refused …', 'us' → undefined }
 */
export function missesOf(failed: readonly string[]): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>()
  for (const entry of failed) {
    const at = entry.indexOf(' ')
    const name = at === -1 ? entry : entry.slice(0, at)
    out.set(name, at === -1 ? out.get(name) : entry.slice(at + 1))
  }
  return out
}

/**
 * Each origin of an attempt log once, with the last outcome and the number
 * of sends: `eu: 503 ×3; us: timeout`.
 *
 * @param log - attempts, in the order they ended
 * @returns the summary
 * @example
 * outcomes([{ origin: 'eu', attempt: 1, outcome: 503, ms: 3 }]) // 'eu: 503'
 */
export function outcomes(log: readonly AttemptRecord[]): string {
  const by = new Map<string, { last: AttemptRecord; sends: number }>()
  for (const a of log) by.set(a.origin, { last: a, sends: (by.get(a.origin)?.sends ?? 0) + 1 })
  return [...by]
    .map(([origin, { last, sends }]) => `${origin}: ${last.outcome}${last.reason === undefined ? '' : ` ${last.reason}`}${sends > 1 ? ` ×${sends}` : ''}`)
    .join('; ')
}

/** The receiver's refusals of a request's signature or its missing request id (DESIGN §6): the edge's setup, not the origin's health. */
const SIGNATURE_REFUSALS: ReadonlySet<string> = new Set(['signature-invalid', 'request-id-missing'])

/** What a failure says when an origin gave a success without the receiver's mark. */
const UNMARKED_HINT =
  ". A success without Once-Applied is no onceReceiver()'s answer (a fallback page, a proxy in between), so nothing is known to be applied: check that the origin serves this path behind onceReceiver()"

/** What a failure says when an origin refused the edge's signature. */
const SIGNATURE_HINT =
  '. An origin refused the signature: give the edge and every origin the same signing secret under the same name (the keyid, e.g. ONCE_SIGNING_SECRET), and check that nothing between them rewrites the path or drops headers, and that their clocks agree within 60 s'

