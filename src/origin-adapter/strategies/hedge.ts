import { attempt, type EngineInput, failure, firstReady, judge, LOST_RACE, nextOrigin, noteWait, permanentRefusal, refused, type Waits, waitedOut } from '../../shared/attempt.js'
import type { SendResult } from '../../shared/send.js'
import type { AttemptRecord, DispatchOutcome, Origin } from '../types.js'

/**
 * `hedge` (seed 004; Dean & Barroso, "The Tail at Scale"): ask the
 * preferred origin; if it has not answered after `hedgeAfterMs`, also ask
 * the next one, and so on up to `maxAttempts`. The first final answer wins
 * and the others are aborted. An attempt that fails outright starts the
 * next one at once; a refusal for good (`handler-failed`,
 * `body-too-large`) ends the request. Each hedge or retry needs its
 * origin's throttle tokens, so an outage never multiplies the load on the
 * origins; an origin that answered with `Retry-After` is not sent the
 * request again before then. An attempt that loses after waiting the whole hedge delay counts
 * as a failure of its origin (one that never answers opens its breaker).
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

  let throttled = false
  const asked: Waits = new Map()
  /**
   * Starts the next attempt; false when no origin may be sent it now (each asked to wait) or its origin's retry
   * tokens are spent (a first attempt always goes).
   */
  const launch = (): boolean => {
    const n = input.firstAttempt + tried.length
    const origin = nextOrigin(input, tried, asked)
    if (!origin) return false
    if (tried.length > 0 && !input.health.canRetry(origin.name)) {
      // Gives back the half-open probe nextOrigin may have claimed.
      input.health.aborted(origin.name, Date.now())
      throttled = true
      return false
    }
    tried.push(origin)
    const controller = new AbortController()
    const onOuter = () => controller.abort(outer.reason)
    outer.addEventListener('abort', onOuter, { once: true })
    const done = attempt(input, origin, n, log, controller.signal).then((result) => {
      outer.removeEventListener('abort', onOuter)
      noteWait(asked, origin, result)
      return { n, origin, result }
    })
    inFlight.set(n, { origin, controller, done })
    return true
  }
  const canLaunch = () => !throttled && tried.length < input.maxAttempts && Date.now() < input.deadline && !outer.aborted

  // Every origin asked every request to wait (a 503's Retry-After): wait for the first, or tell the client when.
  for (let at = firstReady(input, asked); at !== undefined; at = firstReady(input, asked)) {
    if (at >= input.deadline || outer.aborted) return waitedOut(log, at)
    await new Promise((r) => setTimeout(r, at - Date.now()))
  }
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
    const { result, origin } = settled
    const refusal = permanentRefusal(result)
    if ((result.ok && judge(result, input.receiverOnly)?.kind === 'applied') || refusal) {
      for (const loser of inFlight.values()) loser.controller.abort(LOST_RACE)
      // The losers settle at once (their attempts race the abort); their 'aborted' lands in the log.
      await Promise.all([...inFlight.values()].map((f) => f.done))
      if (refusal) return refused(log, origin, refusal)
      return { kind: 'answer', origin: origin.name, reply: (result as Extract<typeof result, { ok: true }>).reply, attempts: log }
    }
    if (canLaunch()) launch()
  }
  return failure(log, 'No origin gave a final answer', firstReady(input, asked))
}
