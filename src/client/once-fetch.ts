import { v7 as uuidv7 } from 'uuid'
import { backoffDelay, retryAfterMs } from '../shared/backoff.js'
import { headerOfKey, keyOfHeader } from './key.js'
import { assertClientOptions } from './options.js'
import { RetryBudget } from '../shared/retry-budget.js'
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
 * with `Retry-After` (still in flight), 429, 502, 503, 504 and problem+json
 * answers with `retryable: true`; never 422 or other final answers. A call
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
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined) ?? undefined
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
    // Buffered once, so every attempt sends the same bytes.
    const body = base.body ? await base.arrayBuffer() : undefined
    const host = new URL(base.url).host
    const aborted = (attempts: number) =>
      new OnceFetchError(`${base.method} ${base.url} aborted after ${attempts} attempts`, 'aborted', attempts, key, { cause: signal?.reason })

    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw aborted(attempt - 1)
      const left = deadline - Date.now()
      if (left <= 0) throw new OnceFetchError(`deadline of ${deadlineMs} ms passed after ${attempt - 1} attempts`, 'deadline', attempt - 1, key)
      const timeout = new AbortController()
      const timer = setTimeout(() => timeout.abort(new DOMException('attempt timed out', 'TimeoutError')), Math.min(timeoutMs, left))
      const attemptSignal = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal
      let response: Response | undefined
      let error: unknown
      let reason: RetryReason | undefined
      try {
        // The answer and what it says (a problem's body is read for `retryable`) are both within the attempt's time.
        const answered = (async () => {
          const res = await transport(attemptRequest(base, headers, body, attemptSignal))
          return { res, why: await retryReason(res) }
        })()
        ;({ res: response, why: reason } = await untilAborted(answered, signal ? [timeout.signal, signal] : [timeout.signal]))
      } catch (err) {
        if (signal?.aborted) throw aborted(attempt)
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

      const asked = response ? retryAfterMs(response.headers.get('retry-after')) : undefined
      const delayMs = asked ?? backoffDelay(attempt, baseDelayMs, maxDelayMs)
      const retry =
        attempt <= maxRetries &&
        (!budget || waiting || budget.canRetry(host)) &&
        delayMs <= maxDelayMs &&
        Date.now() + delayMs < deadline
      if (!retry) {
        if (response) {
          infos.set(response, { key, attempts: attempt, replayed: false })
          return response
        }
        const what = reason === 'timeout' ? `timed out after ${timeoutMs} ms` : 'failed'
        throw new OnceFetchError(`${base.method} ${base.url} ${what} (${attempt} attempts)`, reason === 'timeout' ? 'timeout' : 'network', attempt, key, { cause: error })
      }
      onRetry?.({ attempt, delayMs, reason: reason ?? 'network', key, ...(response ? { response } : { error }) })
      await response?.body?.cancel()
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
 * attempt's timer and the caller hold, not on a composite one. A response
 * that arrives after the abort has its body cancelled.
 */
function untilAborted<T extends { res: Response }>(work: Promise<T>, signals: AbortSignal[]): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stop = (event: Event) => {
      done()
      reject((event.target as AbortSignal).reason)
      work.then((late) => void late.res.body?.cancel().catch(() => {}), () => {})
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
  return (options ? createOnceFetch(options) : defaultFetch)(input, init)
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

/** Why an answer should be retried, or undefined when it is final. */
async function retryReason(res: Response): Promise<RetryReason | undefined> {
  if (res.status === 409 && res.headers.has('retry-after')) return 'in-flight'
  if ([429, 502, 503, 504].includes(res.status)) return 'status'
  if (res.status >= 400 && res.headers.get('content-type')?.startsWith('application/problem+json')) {
    const problem = (await res.clone().json().catch(() => null)) as { retryable?: unknown } | null
    if (problem?.retryable === true) return 'retryable-problem'
  }
  return undefined
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
