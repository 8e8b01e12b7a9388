import { attempt, comeBackAt, type EngineInput, firstReady, LOST_RACE, nextOrigin, OVERTAKEN, settle, type Waits } from '../../shared/attempt.js'
import { failure, refused, waitedOut } from '../../shared/outcome.js'
import type { SendResult } from '../../shared/send.js'
import type { AttemptRecord, DispatchOutcome, Origin, OriginReply } from '../types.js'

/**
 * `hedge` (seed 004; Dean & Barroso, "The Tail at Scale"): ask the
 * preferred origin; if it has not answered after `hedgeAfterMs`, also ask
 * the next one, and so on up to `maxAttempts`. The first final answer wins
 * and the others are aborted. An attempt that fails outright starts the
 * next one at once. Each hedge or retry needs its origin's throttle
 * tokens, so an outage never multiplies the load on the origins; an origin
 * that answered with `Retry-After` is not sent the request again before
 * then (within the deadline the request waits for it). An attempt that
 * loses to a later one after waiting the whole hedge delay counts as a
 * failure of its origin (one that never answers opens its breaker); one
 * launched after the winner counts nothing. An answer that would not change
 * (see `settle`) waits for the copies still in flight, which may apply the
 * request, and is the client's answer if none does.
 *
 * A state-changing request may be hedged only because every copy carries
 * the same `Once-Request-Id` and origins apply it once (`onceReceiver`).
 *
 * @param input - origins, request, identity, limits and `hedgeAfterMs`
 * @returns the first final answer, or why there was none
 * @example
 * const outcome = await hedge({ ...input, hedgeAfterMs: 100 })
 */
export async function hedge(input: EngineInput): Promise<DispatchOutcome> {
  const log: AttemptRecord[] = []
  const tried: Origin[] = []
  const outer = input.signal ?? new AbortController().signal
  const inFlight = new Map<number, { origin: Origin; controller: AbortController; done: Promise<{ n: number; origin: Origin; result: SendResult }> }>()
  const hedgeAfterMs = input.hedgeAfterMs ?? Number.POSITIVE_INFINITY
  const asked: Waits = new Map()
  /** The last answer to pass on should no origin apply the request (see settle). */
  let last: { origin: Origin; reply: OriginReply } | undefined

  /** Starts the next attempt; false when no origin may be sent it now (see nextOrigin). */
  const launch = (): boolean => {
    const n = input.firstAttempt + tried.length
    const origin = nextOrigin(input, tried, asked)
    if (!origin) return false
    tried.push(origin)
    const controller = new AbortController()
    const onOuter = () => controller.abort(outer.reason)
    outer.addEventListener('abort', onOuter, { once: true })
    const done = attempt(input, origin, n, log, controller.signal).then((result) => {
      outer.removeEventListener('abort', onOuter)
      return { n, origin, result }
    })
    inFlight.set(n, { origin, controller, done })
    return true
  }
  const canLaunch = () => tried.length < input.maxAttempts && Date.now() < input.deadline && !outer.aborted

  for (;;) {
    launch()
    while (inFlight.size > 0) {
      let hedgeTimer: ReturnType<typeof setTimeout> | undefined
      const wait = canLaunch() && Number.isFinite(hedgeAfterMs)
        ? new Promise<'hedge'>((r) => (hedgeTimer = setTimeout(() => r('hedge'), Math.max(0, hedgeAfterMs))))
        : new Promise<never>(() => {})
      const settled = await Promise.race([...[...inFlight.values()].map((f) => f.done), wait])
      if (hedgeTimer !== undefined) clearTimeout(hedgeTimer)
      if (settled === 'hedge') {
        launch()
        continue
      }
      inFlight.delete(settled.n)
      const { origin } = settled
      const read = settle(asked, origin, settled.result, input.receiverOnly)
      if (read && 'applied' in read) {
        // Charged only when launched before the winner (it had its chance first); later ones say nothing of their origin.
        for (const [n, loser] of inFlight) loser.controller.abort(n < settled.n ? LOST_RACE : OVERTAKEN)
        // The losers settle at once (their attempts race the abort); their 'aborted' lands in the log.
        await Promise.all([...inFlight.values()].map((f) => f.done))
        return { kind: 'answer', origin: origin.name, reply: read.applied, attempts: log }
      }
      // An answer that would not change is kept for the client, but the copies still in flight may yet apply it.
      if (read) last = { origin, reply: read.passed }
      if (canLaunch()) launch()
    }
    // Nothing in flight: the origins left may have asked to wait (Retry-After); within the deadline, wait and go on.
    const at = firstReady(asked)
    if (at === undefined || !canLaunch()) break
    // Past the deadline: say when to come back only when every origin asked to wait (one may just be throttled).
    if (at >= input.deadline) return last ? refused(log, last.origin, last.reply, comeBackAt(input.origins, asked)) : comeBackAt(input.origins, asked) === undefined ? failure(log, 'No origin gave a final answer', undefined) : waitedOut(log, at)
    await new Promise((r) => setTimeout(r, at - Date.now()))
  }
  if (last) return refused(log, last.origin, last.reply, comeBackAt(input.origins, asked))
  return failure(log, 'No origin gave a final answer', comeBackAt(input.origins, asked))
}
