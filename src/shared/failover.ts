import { attempt, comeBackAt, type EngineInput, firstReady, nextOrigin, settle, type Waits } from './attempt.js'
import { failure, refused, waitedOut } from './outcome.js'
import type { AttemptRecord, DispatchOutcome, Origin, OriginReply } from './types.js'

/**
 * `failover`: one origin at a time, in order of preference, each attempt
 * bounded by `timeoutMs`; on an answer that applied nothing (DESIGN §6's one rule), a timeout or a network error the next
 * origin gets the same request (same `Once-Request-Id`, next
 * `Once-Attempt`), cycling through the group until an answer is final, the
 * attempts or the retry tokens of every origin left run out, or the
 * deadline passes. An origin that answered with `Retry-After` is not sent
 * the request again before then (when every origin asked to wait, the
 * request waits for the first, or ends telling the client when to come
 * back); one whose answer would not change (see `settle`) is not sent it
 * again, and when no origin applies it the client gets that answer.
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
  /** The last answer to pass on should no origin apply the request (see settle). */
  let last: { origin: Origin; reply: OriginReply } | undefined
  while (tried.length < input.maxAttempts) {
    const i = tried.length
    if (Date.now() >= input.deadline || signal.aborted) break
    const origin = nextOrigin(input, tried, asked)
    if (!origin) {
      // The origins left asked to wait (Retry-After): wait for the first within the deadline, else say when.
      const at = firstReady(asked)
      if (at === undefined) break
      // Past the deadline: say when to come back only when every origin asked to wait (one may just be throttled).
      if (at >= input.deadline) return last ? refused(log, last.origin, last.reply, comeBackAt(input.origins, asked)) : comeBackAt(input.origins, asked) === undefined ? failure(log, 'No origin gave a final answer', undefined) : waitedOut(log, at)
      await pause(at - Date.now(), input.deadline)
      continue
    }
    // Back to an origin already tried: a short jittered pause first, not a hammering loop.
    if (tried.includes(origin)) await pause(Math.min(50 * 2 ** (i - input.origins.length), 1000) * Math.random(), input.deadline)
    tried.push(origin)
    const read = settle(asked, origin, await attempt(input, origin, input.firstAttempt + i, log, signal), input.receiverOnly)
    if (read && 'applied' in read) return { kind: 'answer', origin: origin.name, reply: read.applied, attempts: log }
    if (read) last = { origin, reply: read.passed }
  }
  if (last) return refused(log, last.origin, last.reply, comeBackAt(input.origins, asked))
  // Attempts left but no origin to send them to: the retry tokens of every origin left are spent.
  const why = tried.length > 0 && tried.length < input.maxAttempts && !signal.aborted && Date.now() < input.deadline ? 'Retries are throttled: too many recent failures at every origin left' : 'No origin gave a final answer'
  return failure(log, why, comeBackAt(input.origins, asked))
}

function pause(ms: number, deadline: number): Promise<void> {
  const wait = Math.max(0, Math.min(ms, deadline - Date.now()))
  return new Promise((r) => setTimeout(r, wait))
}
