import { retryAfterMs } from './backoff.js'
import { type AnswerVerdict, aboutRequest, type ProblemAbout, STILL_APPLYING, tooLargeAnswer, UNMARKED, verdictOf } from './applied.js'
import type { OriginHealth } from './health.js'
import { SAFE_METHODS } from './wire.js'
import { type SendResult, type SendSecret, sendAttempt } from './send.js'
import type { AttemptRecord, DispatchOutcome, ForwardRequest, Origin, OriginReply, WireIdentity } from './types.js'

/** Everything a strategy needs to run one logical request. */
export interface EngineInput {
  origins: Origin[]
  request: ForwardRequest
  wire: WireIdentity
  health: OriginHealth
  secret?: SendSecret | undefined
  timeoutMs: number
  /** Absolute time (ms since epoch) by which an answer is needed. */
  deadline: number
  maxAttempts: number
  maxResponseBytes: number
  /** `Once-Attempt` of the first send here (sends by earlier Workers come before it). */
  firstAttempt: number
  /** Hedge only: how long to wait for an answer before also asking the next origin. */
  hedgeAfterMs?: number | undefined
  /** Aborts everything (the client went away, or the handler was abandoned). */
  signal?: AbortSignal | undefined
  /** Caps the attempts in flight at once (a Worker has 6 outgoing connections); none: no cap. */
  connections?: Connections | undefined
  /**
   * Only an answer with `Once-Applied` is the receiver's, an oversized one too; one without it applied nothing:
   * replicas (`replicate`), and signed writes (every origin runs `onceReceiver()`, which marks each answer to them).
   */
  receiverOnly?: boolean | undefined
}

/**
 * Reads an attempt's result by the one rule (`shared/applied.ts`, DESIGN §6):
 * an answer's verdict, or undefined when there is none to read (timeout,
 * network error, abort: unknown, the request may have been applied).
 *
 * @param result - one attempt's result, after {@link keepable}
 * @param receiverOnly - see {@link EngineInput.receiverOnly}
 * @returns the verdict, or undefined when unknown
 * @example
 * judge(await sendAttempt(input))?.kind === 'applied'
 */
export function judge(result: SendResult, receiverOnly = false): AnswerVerdict | undefined {
  return result.ok ? verdictOf(result.reply.status, result.reply.headers, result.reply.body, receiverOnly) : undefined
}

/**
 * An applied answer over `maxResponseBytes` is still an applied answer:
 * it becomes the final problem `reply-lost` (DESIGN §6), so no one sends
 * the request again. Any other result is returned as it is.
 *
 * @param result - one attempt's result
 * @param maxResponseBytes - the limit it went over
 * @param receiverOnly - a replica's answer (see `tooLargeAnswer`)
 * @param about - the request's path, key and request id, for the problem
 * @returns the result to read
 * @example
 * const result = keepable(await sendAttempt(input), input.maxResponseBytes, false, aboutRequest(input.request, input.wire))
 */
export function keepable(result: SendResult, maxResponseBytes: number, receiverOnly = false, about: ProblemAbout = {}): SendResult {
  if (result.ok || result.reason !== 'too-large' || !result.head) return result
  const lost = tooLargeAnswer(result.head, maxResponseBytes, receiverOnly, about)
  return lost ? { ok: true, reply: lost, ms: result.ms } : result
}

/**
 * How long an answer asked to wait before the request is sent to its origin
 * again (`Retry-After`, seconds or an HTTP-date, as the client reads it),
 * kept to what a wait may sensibly last; undefined when it asked nothing.
 *
 * @param result - an attempt's result
 * @returns milliseconds, or undefined
 * @example
 * retryAfterOf({ ok: true, reply: { status: 429, headers: [['retry-after', '2']], body }, ms: 3 }) // 2000
 */
export function retryAfterOf(result: SendResult): number | undefined {
  const value = result.ok ? result.reply.headers.find(([name]) => name === 'retry-after')?.[1] : undefined
  const ms = value === undefined ? undefined : retryAfterMs(value)
  return ms === undefined || ms > MAX_RETRY_AFTER_MS ? undefined : ms
}

/** The longest `Retry-After` an origin's embargo honours (999,999 s); a longer one is ignored. */
const MAX_RETRY_AFTER_MS = 999_999_000

/** Sends one attempt and records it (health, attempt log). */
export async function attempt(input: EngineInput, origin: Origin, n: number, log: AttemptRecord[], signal: AbortSignal): Promise<SendResult> {
  // Behind the connection cap: the attempt's timeout starts when it is sent, not while it waits its turn.
  const free = input.connections ? await input.connections.acquire() : () => {}
  try {
    return await attemptNow(input, origin, n, log, signal)
  } finally {
    free()
  }
}

async function attemptNow(input: EngineInput, origin: Origin, n: number, log: AttemptRecord[], signal: AbortSignal): Promise<SendResult> {
  const now = Date.now()
  const timeoutMs = Math.max(1, Math.min(input.timeoutMs, input.deadline - now))
  const result = await sendAttempt({
    origin,
    request: input.request,
    wire: input.wire,
    attempt: n,
    secret: input.secret,
    timeoutMs,
    maxResponseBytes: input.maxResponseBytes,
    signal,
  })
  // A read applies nothing: its answer over the limit is a failed attempt, never `reply-lost` ("it took effect").
  const kept = SAFE_METHODS.has(input.request.method.toUpperCase()) ? result : keepable(result, input.maxResponseBytes, input.receiverOnly, aboutRequest(input.request, input.wire))
  const verdict = judge(kept, input.receiverOnly)
  const record: AttemptRecord = { origin: origin.name, attempt: n, outcome: result.ok ? result.reply.status : result.reason, ms: result.ms }
  if (verdict?.kind === 'not-applied' && verdict.reason !== undefined && (verdict.reason !== UNMARKED || isSuccess(kept))) record.reason = verdict.reason
  log.push(record)
  if (verdict?.kind === 'not-applied' && !aboutTheRequest(verdict)) {
    // A 503's Retry-After is the origin's (down for maintenance, overloaded): it is last in line for every request that
    // long. A 429's is often about one caller (a tenant over its rate): only this request waits (see noteWait).
    input.health.failed(origin.name, Date.now(), kept.ok && kept.reply.status === 503 ? retryAfterOf(kept) : undefined)
  } else if (verdict) {
    // A final answer, or a refusal about this request (the origin works): the origin answered.
    input.health.succeeded(origin.name, result.ms)
  } else if (!result.ok && result.reason === 'aborted' && !(signal.reason === LOST_RACE && result.ms >= (input.hedgeAfterMs ?? Number.POSITIVE_INFINITY))) {
    input.health.aborted(origin.name, Date.now())
  } else {
    // A timeout, a network error, or a race lost to a later attempt after waiting the whole hedge delay without an
    // answer: an origin that never answers loses every race, and must open its breaker rather than be asked first for ever.
    input.health.failed(origin.name, Date.now())
  }
  return kept
}

/**
 * The reason a strategy aborts an attempt that lost to one launched after
 * it (it was hedged because it had not answered, and the hedge won): its
 * origin is charged when it had waited the whole hedge delay. Attempts
 * launched after the winner are aborted with another reason and charged
 * nothing. Compared by identity.
 *
 * @example
 * loser.controller.abort(loser.n < winner.n ? LOST_RACE : OVERTAKEN)
 */
export const LOST_RACE = new DOMException('another origin answered first', 'AbortError')

/**
 * The reason a strategy aborts an attempt launched after the one that
 * answered (or the request ended otherwise): it says nothing of its origin.
 *
 * @example
 * loser.controller.abort(OVERTAKEN)
 */
export const OVERTAKEN = new DOMException('an earlier attempt answered first', 'AbortError')

/**
 * Whether a refusal is about the request, not the origin's health: a
 * permanent one (the app throws on this request or answers it a 500, its
 * body is over the limit), the receiver busy with this very request
 * (`in-flight`), or an answer without the receiver's mark where one was due
 * (a path outside its mount, a WAF page). The origin answered; it counts as
 * answering: one request an app cannot take must not open its origin's
 * breaker for every other (an app down for every request is asked first and
 * passed over, each request going on to the next origin).
 */
function aboutTheRequest(verdict: Extract<AnswerVerdict, { kind: 'not-applied' }>): boolean {
  return verdict.permanent || verdict.reason === STILL_APPLYING || verdict.reason === UNMARKED
}

/** Whether `result` is an answer with a 2xx or 3xx status. */
function isSuccess(result: SendResult): boolean {
  return result.ok && result.reply.status < 400
}

/**
 * The origin to try next: origins in rotation before drained ones
 * (`drain: true`), available ones (breaker not open, no `Retry-After`
 * pending) before doubtful ones, then the least tried in this request, then
 * the order of preference. So a healthy origin is always preferred to an
 * open one, a drained one is asked only when no other can be, retries cycle
 * through the group, and when every origin is doubtful the request still
 * goes somewhere: an answer from a doubtful origin beats none. Claims the
 * half-open probe of the one it picks. Left out for this request: an
 * origin that asked it to wait (`Retry-After`) until then, one whose answer
 * would not change (see {@link settle}), and, after the first attempt, one
 * whose retry tokens are spent (see `OriginHealth.canRetry`).
 *
 * @param input - the request's engine input
 * @param tried - origins this request has already sent to, one entry per send
 * @param asked - what the origins asked this request (see {@link noteWait})
 * @returns the origin to send to, or undefined when none may be sent it now
 * @example
 * const origin = nextOrigin(input, tried, asked)
 */
export function nextOrigin(input: EngineInput, tried: readonly Origin[], asked: Waits = new Map()): Origin | undefined {
  const now = Date.now()
  const ranked = input.origins
    .filter((origin) => (asked.get(origin.name) ?? 0) <= now && (tried.length === 0 || input.health.canRetry(origin.name)))
    .map((origin, index) => ({
      origin,
      index,
      drained: 'url' in origin && origin.drain === true,
      available: input.health.available(origin.name, now),
      sends: tried.filter((t) => t === origin).length,
    }))
    .sort((a, b) => Number(a.drained) - Number(b.drained) || Number(b.available) - Number(a.available) || a.sends - b.sends || a.index - b.index)
  const pick = ranked[0]?.origin
  if (pick) input.health.claim(pick.name, now)
  return pick
}

/**
 * What the origins asked this request: origin name → the time (ms since
 * epoch) before which it is not sent the request again (its `Retry-After`),
 * or `Infinity` when its answer would not change (see {@link settle}).
 */
export type Waits = Map<string, number>

/**
 * Reads an attempt's result for a strategy, once: the answer when it was
 * applied (the strategy's answer); an answer that applied nothing and would
 * be the same if sent to this origin again: a refusal the receiver calls
 * permanent (`handler-failed`, `body-too-large`) or, where every answer must
 * be the receiver's (`receiverOnly`), one without its mark (`passed`: the
 * strategy asks no more of that origin for this request but goes on to the
 * others, for an app's throw may pass, another origin's limit be larger, a
 * load balancer stand before one origin only; when none applies it, the
 * client gets such an answer as the origin gave it, {@link refused}, not a
 * retryable 502); else undefined. Notes in `asked` what the answer asked of
 * the rest of the request: never again for a passed one, else its
 * `Retry-After`.
 *
 * @param asked - the request's waits
 * @param origin - the origin that answered
 * @param result - its answer
 * @param receiverOnly - see {@link EngineInput.receiverOnly}
 * @returns the applied answer, the answer to pass on, or undefined
 * @example
 * const read = settle(asked, origin, result, input.receiverOnly)
 * if (read && 'applied' in read) return { kind: 'answer', origin: origin.name, reply: read.applied, attempts: log }
 */
export function settle(asked: Waits, origin: Origin, result: SendResult, receiverOnly = false): { applied: OriginReply } | { passed: OriginReply } | undefined {
  if (!result.ok) return undefined
  const verdict = judge(result, receiverOnly)
  if (verdict?.kind === 'applied') return { applied: result.reply }
  if (verdict?.kind === 'not-applied' && (verdict.permanent || verdict.reason === UNMARKED)) {
    asked.set(origin.name, Number.POSITIVE_INFINITY)
    // An unmarked 2xx or 3xx (a fallback page, a proxy's own success) applied nothing: passed on, it would tell the
    // client its write succeeded. Another origin may apply it; if none does, the client gets a retryable failure.
    if (isSuccess(result)) return undefined
    return { passed: result.reply }
  }
  const ms = retryAfterOf(result)
  if (ms !== undefined) asked.set(origin.name, Date.now() + ms)
  return undefined
}

/**
 * The earliest time an origin that asked this request to wait
 * (`Retry-After`) may be sent it again; undefined when none is waiting.
 *
 * @param asked - the request's waits
 * @returns the time (ms since epoch), or undefined
 * @example
 * const at = firstReady(asked) // Date.now() + 30000 after an origin said Retry-After: 30
 */
export function firstReady(asked: Waits): number | undefined {
  const now = Date.now()
  const waits = [...asked.values()].filter((at) => at > now && Number.isFinite(at))
  return waits.length > 0 ? Math.min(...waits) : undefined
}

/**
 * When to come back, for a request that ends without an answer: the first
 * time an origin asked for (`Retry-After`), but only when every origin of
 * the group asked to wait or would answer the same. While another origin
 * only failed (a reset, a timeout), the request may go to it at once, and
 * one origin's hour of maintenance is no reason to wait an hour.
 *
 * @param origins - the group
 * @param asked - what the origins asked this request
 * @returns epoch ms, or undefined
 * @example
 * return failure(log, 'No origin gave a final answer', comeBackAt(input.origins, asked))
 */
export function comeBackAt(origins: readonly Origin[], asked: Waits): number | undefined {
  const now = Date.now()
  return origins.every((o) => (asked.get(o.name) ?? 0) > now) ? firstReady(asked) : undefined
}

/**
 * A cap on the attempts in flight at once: a deployed Worker opens at most
 * 6 outgoing connections together, and an attempt queued behind the cap
 * must not spend its timeout waiting (false timeouts would open breakers).
 *
 * @example
 * const connections = new Connections(6)
 * const free = await connections.acquire()
 * try { await send() } finally { free() }
 */
export class Connections {
  #free: number
  readonly #queue: (() => void)[] = []

  constructor(readonly size = MAX_CONNECTIONS) {
    this.#free = size
  }

  /** Waits for a free connection; the returned function gives it back (once). */
  async acquire(): Promise<() => void> {
    if (this.#free > 0) this.#free--
    else await new Promise<void>((resolve) => this.#queue.push(resolve))
    let freed = false
    return () => {
      if (freed) return
      freed = true
      const next = this.#queue.shift()
      if (next) next()
      else this.#free++
    }
  }
}

/** Outgoing connections a Worker invocation may hold at once. */
export const MAX_CONNECTIONS = 6
