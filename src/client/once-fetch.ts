import { v7 as uuidv7 } from 'uuid'
import { backoffDelay, retryAfterMs } from '../shared/backoff.js'
import { headerOfKey, keyOfHeader } from './key.js'
import { assertClientOptions } from './options.js'
import { RetryBudget } from '../shared/retry-budget.js'
import { PROBLEM_BASE } from '../shared/problem.js'
import { type OnceFetchOptions, type OnceInfo, OnceFetchError, type RetryReason } from './types.js'

/** A `fetch` with hono-once's retries: same signature, so it drops in anywhere, Hono's `hc` included. */
export type OnceFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

const infos = new WeakMap<object, OnceInfo>()

/** The budget every once fetch shares unless given its own: throttling is per host, not per call. */
const sharedBudget = new RetryBudget()

/** Methods a server may receive twice with the effect of once (RFC 9110 §9.2.2): the only ones resent without a key. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/**
 * Makes a `fetch` that names each logical call once and retries it safely
 * (seed 003's client library; Stripe's SDKs). A state-changing call gets one
 * `Idempotency-Key`, kept on every retry, so the server applies it once
 * however many attempts it takes. Retries: network errors, timeouts, 409
 * in flight (`Retry-After`, or the in-flight problem type), 429, 502, 503,
 * 504 and problem+json answers with `retryable: true`; never a replay
 * (`Idempotent-Replayed: true`), a problem with `retryable: false` whatever
 * its status (a `500 reply-lost`), 422 or other final answers. A call
 * without a key is retried only when its method is idempotent (GET, HEAD,
 * OPTIONS, TRACE, PUT, DELETE); other keyless calls get one attempt. Each
 * attempt keeps every request option the caller gave (credentials, mode,
 * cache, keepalive, referrer, integrity, priority, redirect, `cf`, …). Backoff
 * is exponential with full jitter, `Retry-After` is honoured, and a per-host
 * retry budget stops retry storms (a 409 in flight takes nothing from it).
 *
 * @param options - see {@link OnceFetchOptions}; validated here
 * @returns the fetch
 * @example
 * import { hc } from 'hono/client'
 * import { createOnceFetch } from 'hono-once/client'
 * import type { BankApp } from './worker'
 *
 * const client = hc<BankApp>('https://bank.example', { fetch: createOnceFetch({ retries: 3 }) })
 * const res = await client.accounts[':id'].deposits.$post({ param: { id: 'alice' }, json: { amount: 100 } })
 */
export function createOnceFetch(options: OnceFetchOptions = {}): OnceFetch {
  assertClientOptions(options)
  const {
    retries = 4,
    timeoutMs = 10_000,
    deadlineMs = 60_000,
    baseDelayMs = 100,
    maxDelayMs = 10_000,
    methods = ['POST', 'PUT', 'PATCH', 'DELETE'],
    generateKey = uuidv7,
    budget = sharedBudget,
    onRetry,
    fetch: transport = (request: Request) => fetch(request),
  } = options
  const logical = new Set(methods.map((m) => m.toUpperCase()))

  return async function onceFetch(input, init) {
    const deadline = Date.now() + deadlineMs
    const base = new Request(input, init)
    // As the Request constructor reads it: init's signal when given, `null` meaning none; else the input Request's.
    const signal = init?.signal === null ? undefined : (init?.signal ?? (input instanceof Request ? input.signal : undefined))
    // fetch upper-cases only the six standard methods: 'patch' stays 'patch'.
    const method = base.method.toUpperCase()
    const headers = new Headers(base.headers)
    const given = headers.get('idempotency-key')
    let key: string | undefined
    if (given !== null) {
      // A header that is not a key goes out as it is, for the server to refuse.
      key = keyOfHeader(given)
      if (key === undefined) key = given
      else headers.set('idempotency-key', headerOfKey(key))
    } else if (logical.has(method)) {
      key = generateKey()
      headers.set('idempotency-key', headerOfKey(key))
    }
    // Without a key, only an idempotent method may reach the server twice.
    const maxRetries = key !== undefined || IDEMPOTENT.has(method) ? retries : 0
    const url = new URL(base.url)
    const host = url.host
    // Error messages are logged: the call's origin and path, never its query (`?access_token=…`) or fragment.
    const call = `${base.method} ${url.origin}${url.pathname}`
    const aborted = (attempts: number) => new OnceFetchError(`${call} aborted after ${attempts} attempts`, 'aborted', attempts, key, { cause: signal?.reason })
    const pastDeadline = (attempts: number, cause?: unknown) =>
      new OnceFetchError(`${call}: deadline of ${deadlineMs} ms passed after ${attempts} attempts`, 'deadline', attempts, key, { cause })
    // Buffered once, so every attempt sends the same bytes; a body that stalls is held to the deadline and the caller's signal.
    let body: ArrayBuffer | undefined
    if (base.body) {
      const cut = new AbortController()
      const timer = setTimeout(() => cut.abort(new DOMException('deadline passed', 'TimeoutError')), deadline - Date.now())
      try {
        body = await untilAborted(base.arrayBuffer(), signal ? [cut.signal, signal] : [cut.signal])
      } catch (err) {
        if (signal?.aborted) throw aborted(0)
        if (cut.signal.aborted) throw pastDeadline(0, err)
        throw err
      } finally {
        clearTimeout(timer)
      }
    }

    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw aborted(attempt - 1)
      const left = deadline - Date.now()
      if (left <= 0) throw pastDeadline(attempt - 1)
      // The attempt's time: its own timeout, or what is left of the call's deadline when that is shorter.
      const allowed = Math.min(timeoutMs, left)
      const timeout = new AbortController()
      const timer = setTimeout(() => timeout.abort(new DOMException('attempt timed out', 'TimeoutError')), allowed)
      const attemptSignal = signal ? anySignal([signal, timeout.signal]) : timeout.signal
      let response: Response | undefined
      let error: unknown
      let reason: RetryReason | undefined
      try {
        // The answer and what it says (a problem's body is read for `retryable`) are both within the attempt's time.
        const answered = (async () => {
          const res = await transport(attemptRequest(base, headers, body, attemptSignal))
          return { res, why: await retryReason(res) }
        })()
        const late = (given: { res: Response }) => void given.res.body?.cancel().catch(() => {})
        ;({ res: response, why: reason } = await untilAborted(answered, signal ? [timeout.signal, signal] : [timeout.signal], late))
      } catch (err) {
        if (signal?.aborted) throw aborted(attempt)
        if (timeout.signal.aborted && allowed < timeoutMs) throw pastDeadline(attempt, err)
        if (isProgrammingError(err)) {
          throw new TypeError(
            "hono-once/client: the fetch option was called without its object (Illegal invocation): pass (request) => env.API.fetch(request), not env.API.fetch",
            { cause: err },
          )
        }
        error = err
        reason = timeout.signal.aborted ? 'timeout' : 'network'
      } finally {
        clearTimeout(timer)
      }

      if (reason === undefined && response) {
        if (budget) budget.onSuccess(host)
        infos.set(response, { key, attempts: attempt, replayed: response.headers.get('idempotent-replayed') === 'true' })
        return response
      }
      // A 409 in flight is the server asking to wait, not failing: it neither takes a token nor needs one.
      const waiting = reason === 'in-flight'
      if (budget && !waiting) budget.onFailure(host)

      // The server's in-flight problem asks for 1 s; a cross-origin browser may not see that header (see docs/client.md).
      const asked = response ? (retryAfterMs(response.headers.get('retry-after')) ?? (waiting ? 1000 : undefined)) : undefined
      const delayMs = asked ?? backoffDelay(attempt, baseDelayMs, maxDelayMs)
      const retry =
        attempt <= maxRetries &&
        (!budget || waiting || budget.canRetry(host)) &&
        delayMs <= maxDelayMs &&
        Date.now() + delayMs < deadline
      if (!retry) {
        if (response) {
          infos.set(response, { key, attempts: attempt, replayed: response.headers.get('idempotent-replayed') === 'true' })
          return response
        }
        const what = reason === 'timeout' ? `timed out after ${allowed} ms` : 'failed'
        throw new OnceFetchError(`${call} ${what} (${attempt} attempts)`, reason === 'timeout' ? 'timeout' : 'network', attempt, key, { cause: error })
      }
      try {
        onRetry?.({ attempt, delayMs, reason: reason ?? 'network', key, ...(response ? { response } : { error }) })
      } catch (err) {
        // The caller's hook: its failure must not lose the call (nor its key) in the middle of a retry.
        console.error('hono-once/client: onRetry threw; retrying anyway', err)
      }
      // Unless onRetry is reading it: then the body is the hook's.
      if (response?.body && !response.body.locked) await response.body.cancel().catch(() => {})
      try {
        await sleep(delayMs, signal)
      } catch {
        throw aborted(attempt)
      }
    }
  }
}

/**
 * One attempt: the caller's request with its every option (credentials, mode,
 * cache, keepalive, integrity, priority, redirect, `cf`, …) kept by building
 * it from `base`, and this call's headers, buffered body and signal. A
 * `Request` built from another with a non-empty init resets its referrer and
 * referrer policy (Fetch standard, Request constructor), so those two are
 * given again where the runtime has them (workerd has neither).
 */
function attemptRequest(base: Request, headers: Headers, body: ArrayBuffer | undefined, signal: AbortSignal): Request {
  // Browser and Node fields the Workers types do not declare.
  const { referrer, referrerPolicy } = base as { referrer?: unknown; referrerPolicy?: unknown }
  const init: Record<string, unknown> = { headers, body, signal }
  if (typeof referrer === 'string') init.referrer = referrer
  if (typeof referrerPolicy === 'string') init.referrerPolicy = referrerPolicy
  return new Request(base, init as RequestInit)
}

/**
 * `work`, or a rejection with the reason of the first of `signals` to abort,
 * whichever comes first. The attempt's timeout, the call's deadline and the
 * caller's abort hold whatever the transport does with the request's signal:
 * Node's fetch loses the signal of a `Request` built from another once a
 * garbage collection has run (nodejs/undici#4068), and a custom transport
 * may ignore it. Listens on the source signals themselves, which the
 * attempt's timer and the caller hold, not on a composite one. What
 * arrives after the abort is given to `late` (a response's body is cancelled there).
 */
function untilAborted<T>(work: Promise<T>, signals: AbortSignal[], late?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stop = (event: Event) => {
      done()
      reject((event.target as AbortSignal).reason)
      work.then((value) => late?.(value), () => {})
    }
    const done = () => signals.forEach((s) => s.removeEventListener('abort', stop))
    const already = signals.find((s) => s.aborted)
    if (already) return stop({ target: already } as unknown as Event)
    signals.forEach((s) => s.addEventListener('abort', stop, { once: true }))
    work.then(
      (value) => (done(), resolve(value)),
      (err: unknown) => (done(), reject(err)),
    )
  })
}

const defaultFetch = createOnceFetch()

/**
 * `fetch` with one idempotency key per logical call and safe retries, with
 * the default options (or the given ones).
 *
 * @param input - as for `fetch`
 * @param init - as for `fetch`; an `Idempotency-Key` header set here is used as the key
 * @param options - see {@link OnceFetchOptions}
 * @returns the answer of the attempt that succeeded, or the last final answer
 * @throws OnceFetchError when no attempt got an answer, with the bare `key` to retry with later; `reason: 'aborted'` (the signal's reason as `cause`) when the caller aborts
 * @example
 * const res = await onceFetch('https://bank.example/accounts/alice/deposits', {
 *   method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amount: 100 }),
 * })
 * onceInfo(res) // { key: '0193…', attempts: 2, replayed: true }
 */
export function onceFetch(input: string | URL | Request, init?: RequestInit, options?: OnceFetchOptions): Promise<Response> {
  let fetch: OnceFetch
  try {
    fetch = options ? createOnceFetch(options) : defaultFetch
  } catch (err) {
    // As fetch: every failure is a rejection, bad options included (createOnceFetch alone throws them at once).
    return Promise.reject(err)
  }
  return fetch(input, init)
}

/**
 * How a response from {@link onceFetch} was obtained: its key, the number
 * of attempts, and whether the server replayed a stored reply.
 *
 * @param response - a response returned by a once fetch: the `Response`, or the `ClientResponse` that
 *   `hc` types it as (the same object; typed `object` so either fits under DOM or workers types)
 * @returns the info, or undefined for other responses
 * @example
 * const { attempts, replayed } = onceInfo(res) ?? {}
 */
export function onceInfo(response: object): OnceInfo | undefined {
  return infos.get(response)
}

/**
 * Why an answer should be retried, or undefined when it is final. The
 * server's word comes first: a replay (`Idempotent-Replayed: true`) is the
 * stored answer and never changes, and a problem saying `retryable: false`
 * is final whatever its status (a `500 reply-lost`: applied, its answer
 * gone). Then the status: 409 in flight (its `Retry-After`, or the
 * problem type where a cross-origin browser hides the header), 429, 502,
 * 503, 504; then a problem saying `retryable: true`, unless it is a 422,
 * which is final whatever it says.
 */
async function retryReason(res: Response): Promise<RetryReason | undefined> {
  if (res.status < 400 || res.headers.get('idempotent-replayed') === 'true') return undefined
  // Media types are case-insensitive (RFC 9110 §8.3.1).
  const problem = res.headers.get('content-type')?.toLowerCase().startsWith('application/problem+json')
    ? ((await res.clone().json().catch(() => null)) as { type?: unknown; retryable?: unknown } | null)
    : null
  // A 422 is final whatever its problem says (docs/client.md: "never 422"): the same bytes get the same refusal.
  if (problem?.retryable === false || res.status === 422) return undefined
  if (res.status === 409 && (res.headers.has('retry-after') || problem?.type === `${PROBLEM_BASE}in-flight`)) return 'in-flight'
  if ([429, 502, 503, 504].includes(res.status)) return 'status'
  if (problem?.retryable === true) return 'retryable-problem'
  return undefined
}

/** `AbortSignal.any`, or the same built by hand where a runtime lacks it (Safari < 17.4, Chrome < 116, Firefox < 124). */
function anySignal(signals: AbortSignal[]): AbortSignal {
  if (typeof AbortSignal.any === 'function') return AbortSignal.any(signals)
  const both = new AbortController()
  const stop = (event: Event) => both.abort((event.target as AbortSignal).reason)
  for (const s of signals) {
    if (s.aborted) return AbortSignal.abort(s.reason)
    s.addEventListener('abort', stop, { once: true })
  }
  return both.signal
}

/** A transport that cannot work whatever the network does: a method passed without its object (`env.API.fetch`). */
function isProgrammingError(err: unknown): boolean {
  return err instanceof TypeError && /Illegal invocation/.test(err.message)
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    if (ms <= 0) return resolve()
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
