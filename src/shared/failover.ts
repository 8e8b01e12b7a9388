import { attempt, type EngineInput, failure, firstReady, judge, nextOrigin, noteWait, permanentRefusal, refused, type Waits, waitedOut } from './attempt.js'
import type { AttemptRecord, DispatchOutcome, Origin } from './types.js'

/**
 * `failover`: one origin at a time, in order of preference, each attempt
 * bounded by `timeoutMs`; on an answer that applied nothing (DESIGN §6's one rule), a timeout or a network error the next
 * origin gets the same request (same `Once-Request-Id`, next
 * `Once-Attempt`), cycling through the group until an answer is final, an
 * origin refuses it for good (`handler-failed`, `body-too-large`: every
 * origin would), the attempts or the next origin's retry tokens run out, or
 * the deadline passes. An origin that answered with `Retry-After` is not
 * sent the request again before then; when every origin asked to wait, the
 * request waits for the first, or ends telling the client when to come back.
 *
 * @param input - origins, request, identity and limits
 * @returns the first final answer, or why there was none
 * @example
 * const outcome = await failover({ origins, request, wire, health, timeoutMs: 1500, deadline: Date.now() + 6000, maxAttempts: 3, maxResponseBytes: 1 << 20, firstAttempt: 1 })
 */
export async function failover(input: EngineInput): Promise<DispatchOutcome> {
  const log: AttemptRecord[] = []
  const tried: Origin[] = []
  const asked: Waits = new Map()
  const signal = input.signal ?? new AbortController().signal
  while (tried.length < input.maxAttempts) {
    const i = tried.length
    if (Date.now() >= input.deadline || signal.aborted) break
    const origin = nextOrigin(input, tried, asked)
    if (!origin) {
      // Every origin asked to wait (Retry-After): wait for the first, or tell the client when, past the deadline.
      const at = firstReady(input, asked) ?? Date.now()
      if (at >= input.deadline) return waitedOut(log, at)
      await pause(at - Date.now(), input.deadline)
      continue
    }
    if (i > 0 && !input.health.canRetry(origin.name)) {
      // Gives back the half-open probe nextOrigin may have claimed.
      input.health.aborted(origin.name, Date.now())
      return failure(log, `Retries are throttled: too many recent failures at ${origin.name}`)
    }
    // Back to an origin already tried: a short jittered pause first, not a hammering loop.
    if (tried.includes(origin)) await pause(Math.min(50 * 2 ** (i - input.origins.length), 1000) * Math.random(), input.deadline)
    tried.push(origin)
    const result = await attempt(input, origin, input.firstAttempt + i, log, signal)
    if (result.ok && judge(result, input.receiverOnly)?.kind === 'applied') return { kind: 'answer', origin: origin.name, reply: result.reply, attempts: log }
    noteWait(asked, origin, result)
    const refusal = permanentRefusal(result)
    if (refusal) return refused(log, origin, refusal)
  }
  return failure(log, 'No origin gave a final answer', firstReady(input, asked))
}

function pause(ms: number, deadline: number): Promise<void> {
  const wait = Math.max(0, Math.min(ms, deadline - Date.now()))
  return new Promise((r) => setTimeout(r, wait))
}
