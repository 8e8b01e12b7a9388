import { attempt, type EngineInput, failure, judge, nextOrigin, permanentRefusal, refused } from './attempt.js'
import type { AttemptRecord, DispatchOutcome, Origin } from './types.js'

/**
 * `failover`: one origin at a time, in order of preference, each attempt
 * bounded by `timeoutMs`; on an answer that applied nothing (DESIGN §6's one rule), a timeout or a network error the next
 * origin gets the same request (same `Once-Request-Id`, next
 * `Once-Attempt`), cycling through the group until an answer is final, an
 * origin refuses it for good (`handler-failed`, `body-too-large`: every
 * origin would), the attempts or the next origin's retry tokens run out, or
 * the deadline passes.
 *
 * @param input - origins, request, identity and limits
 * @returns the first final answer, or why there was none
 * @example
 * const outcome = await failover({ origins, request, wire, health, timeoutMs: 1500, deadline: Date.now() + 6000, maxAttempts: 3, maxResponseBytes: 1 << 20, firstAttempt: 1 })
 */
export async function failover(input: EngineInput): Promise<DispatchOutcome> {
  const log: AttemptRecord[] = []
  const tried: Origin[] = []
  const signal = input.signal ?? new AbortController().signal
  for (let i = 0; i < input.maxAttempts; i++) {
    if (Date.now() >= input.deadline || signal.aborted) break
    const origin = nextOrigin(input, tried)
    if (i > 0 && !input.health.canRetry(origin.name)) {
      // Gives back the half-open probe nextOrigin may have claimed.
      input.health.aborted(origin.name, Date.now())
      return failure(log, `Retries are throttled: too many recent failures at ${origin.name}`)
    }
    // Back to an origin already tried: a short jittered pause first, not a hammering loop.
    if (tried.includes(origin)) await pause(Math.min(50 * 2 ** (i - input.origins.length), 1000) * Math.random(), input.deadline)
    tried.push(origin)
    const result = await attempt(input, origin, input.firstAttempt + i, log, signal)
    if (result.ok && judge(result)?.kind === 'applied') return { kind: 'answer', origin: origin.name, reply: result.reply, attempts: log }
    const refusal = permanentRefusal(result)
    if (refusal) return refused(log, origin, refusal)
  }
  return failure(log, 'No origin gave a final answer')
}

function pause(ms: number, deadline: number): Promise<void> {
  const wait = Math.max(0, Math.min(ms, deadline - Date.now()))
  return new Promise((r) => setTimeout(r, wait))
}
