import { retryAfterMs } from '../client/backoff.js'
import { ONCE_HEADERS } from '../shared/wire.js'
import type { OriginHealth } from './health.js'
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
}

/** How an origin's answer counts (DESIGN §5): final, worth another attempt, or a sequence gap. */
export type Verdict = { kind: 'final' } | { kind: 'retry'; retryAfterMs?: number | undefined } | { kind: 'gap'; expected: number }

/**
 * Classifies an origin's answer. Retryable at another origin: any 5xx, 429
 * (honouring `Retry-After`) and an origin receiver's 409 "still running"
 * (it carries `Retry-After`). A 409 with `Once-Expected-Sequence` is a
 * sequence gap. Everything else (2xx, 3xx, other 4xx) is final.
 *
 * @param reply - the origin's answer
 * @returns the verdict
 * @example
 * verdictOf({ status: 503, headers: [], body: new Uint8Array() }) // { kind: 'retry' }
 */
export function verdictOf(reply: OriginReply): Verdict {
  const header = (name: string) => reply.headers.find(([n]) => n === name.toLowerCase())?.[1]
  if (reply.status === 409) {
    const expected = header(ONCE_HEADERS.expectedSequence)
    if (expected !== undefined && /^[0-9]{1,15}$/.test(expected.trim())) return { kind: 'gap', expected: Number(expected.trim()) }
    if (header('retry-after') !== undefined) return { kind: 'retry', retryAfterMs: retryAfter(header('retry-after')) }
    return { kind: 'final' }
  }
  if (reply.status === 429) return { kind: 'retry', retryAfterMs: retryAfter(header('retry-after')) }
  // Any 5xx: another region may well answer (DESIGN §3.6); the request id keeps it from applying twice.
  if (reply.status >= 500) return { kind: 'retry' }
  return { kind: 'final' }
}

/** `Retry-After` as the client reads it (seconds or an HTTP-date), kept to what an embargo may sensibly last. */
function retryAfter(value: string | undefined): number | undefined {
  const ms = value === undefined ? undefined : retryAfterMs(value)
  return ms === undefined || ms > MAX_RETRY_AFTER_MS ? undefined : ms
}

/** The longest `Retry-After` an origin's embargo honours (999,999 s); a longer one is ignored. */
const MAX_RETRY_AFTER_MS = 999_999_000

/** Sends one attempt and records it (health, attempt log). */
export async function attempt(input: EngineInput, origin: Origin, n: number, log: AttemptRecord[], signal: AbortSignal): Promise<SendResult> {
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
  log.push({ origin: origin.name, attempt: n, outcome: result.ok ? result.reply.status : result.reason, ms: result.ms })
  if (result.ok) {
    const verdict = verdictOf(result.reply)
    if (verdict.kind === 'retry') input.health.failed(origin.name, Date.now(), verdict.retryAfterMs)
    else input.health.succeeded(origin.name, result.ms)
  } else if (result.reason === 'aborted') {
    input.health.aborted(origin.name, Date.now())
  } else {
    input.health.failed(origin.name, Date.now())
  }
  return result
}

/**
 * The origin to try next: available ones (breaker not open, no
 * `Retry-After` pending) before doubtful ones, then the least tried in this
 * request, then the order of preference. So a healthy origin is always
 * preferred to an open one, retries cycle through the group, and when every
 * origin is doubtful the request still goes somewhere: an answer from a
 * doubtful origin beats none. Claims the half-open probe of the one it picks.
 *
 * @param input - the request's engine input
 * @param tried - origins this request has already sent to, one entry per send
 * @returns the origin to send to
 * @example
 * const origin = nextOrigin(input, tried)
 */
export function nextOrigin(input: EngineInput, tried: readonly Origin[]): Origin {
  const now = Date.now()
  const ranked = input.origins
    .map((origin, index) => ({ origin, index, available: input.health.available(origin.name, now), sends: tried.filter((t) => t === origin).length }))
    .sort((a, b) => Number(b.available) - Number(a.available) || a.sends - b.sends || a.index - b.index)
  const pick = ranked[0]!.origin
  input.health.claim(pick.name, now)
  return pick
}

/** The failure a client sees when no attempt got a final answer: 504 when the last ones timed out, else 502. */
export function failure(log: AttemptRecord[], why: string): DispatchOutcome {
  const timeouts = log.filter((a) => a.outcome === 'timeout').length
  const status = log.length > 0 && timeouts === log.length ? 504 : log.length === 0 ? 504 : 502
  const seen = log.map((a) => `${a.origin}#${a.attempt}: ${a.outcome}`).join(', ')
  return { kind: 'failed', status, detail: `${why}${seen ? ` (${seen})` : ''}`, attempts: log }
}
