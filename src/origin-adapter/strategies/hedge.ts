import { attempt, type EngineInput, failure, judge, nextOrigin } from '../../shared/attempt.js'
import type { SendResult } from '../../shared/send.js'
import type { AttemptRecord, DispatchOutcome, Origin } from '../types.js'

/**
 * `hedge` (seed 004; Dean & Barroso, "The Tail at Scale"): ask the
 * preferred origin; if it has not answered after `hedgeAfterMs`, also ask
 * the next one, and so on up to `maxAttempts`. The first final answer wins
 * and the others are aborted. An attempt that fails outright starts the
 * next one at once. Hedges and retries spend the group's throttle tokens,
 * so an outage never multiplies the load on the origins.
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

  const launch = (): void => {
    const n = input.firstAttempt + tried.length
    const origin = nextOrigin(input, tried)
    tried.push(origin)
    const controller = new AbortController()
    const onOuter = () => controller.abort(outer.reason)
    outer.addEventListener('abort', onOuter, { once: true })
    const done = attempt(input, origin, n, log, controller.signal).then((result) => {
      outer.removeEventListener('abort', onOuter)
      return { n, origin, result }
    })
    inFlight.set(n, { origin, controller, done })
  }
  const canLaunch = () => tried.length < input.maxAttempts && Date.now() < input.deadline && !outer.aborted && (tried.length === 0 || input.health.canRetry())

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
    if (result.ok && judge(result)?.kind === 'applied') {
      for (const loser of inFlight.values()) loser.controller.abort(new DOMException('another origin answered first', 'AbortError'))
      // The losers settle at once (their attempts race the abort); their 'aborted' lands in the log.
      await Promise.all([...inFlight.values()].map((f) => f.done))
      return { kind: 'answer', origin: origin.name, reply: result.reply, attempts: log }
    }
    if (canLaunch()) launch()
  }
  return failure(log, 'No origin gave a final answer')
}
