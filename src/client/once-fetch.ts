import { v7 as uuidv7 } from 'uuid'
import { z } from 'zod'
import { assertOptions, functionOption } from '../shared/options.js'
import { backoffDelay, retryAfterMs } from './backoff.js'
import { RetryBudget } from './retry-budget.js'
import { type OnceFetchOptions, type OnceInfo, OnceFetchError, type RetryReason } from './types.js'

/** A `fetch` with hono-once's retries: same signature, so it drops in anywhere, Hono's `hc` included. */
export type OnceFetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>

const infos = new WeakMap<Response, OnceInfo>()

/** The budget every once fetch shares unless given its own: throttling is per host, not per call. */
const sharedBudget = new RetryBudget()

const schema = z.strictObject({
  retries: z.number().int().min(0).max(10).optional(),
  timeoutMs: z.number().int().positive().optional(),
  deadlineMs: z.number().int().positive().optional(),
  baseDelayMs: z.number().int().min(0).optional(),
  maxDelayMs: z.number().int().min(0).optional(),
  methods: z.array(z.string().regex(/^[A-Za-z]+$/, 'expected HTTP method names')).optional(),
  generateKey: functionOption.optional(),
  budget: z.union([z.literal(false), z.instanceof(RetryBudget)]).optional(),
  onRetry: functionOption.optional(),
  fetch: functionOption.optional(),
})

/**
 * Makes a `fetch` that names each logical call once and retries it safely
 * (seed 003's client library; Stripe's SDKs). A state-changing call gets one
 * `Idempotency-Key`, kept on every retry, so the server applies it once
 * however many attempts it takes. Retries: network errors, timeouts, 409
 * with `Retry-After` (still in flight), 429, 502, 503, 504 and problem+json
 * answers with `retryable: true`; never 422 or other final answers. Backoff
 * is exponential with full jitter, `Retry-After` is honoured, and a per-host
 * retry budget stops retry storms.
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
  assertOptions(schema, options, 'hono-once/client')
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
    const headers = new Headers(base.headers)
    let key = headers.get('idempotency-key') ?? undefined
    if (key === undefined && logical.has(base.method)) {
      key = generateKey()
      headers.set('idempotency-key', `"${key}"`)
    }
    // Buffered once, so every attempt sends the same bytes.
    const body = base.body ? await base.arrayBuffer() : undefined
    const host = new URL(base.url).host

    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted()
      const left = deadline - Date.now()
      if (left <= 0) throw new OnceFetchError(`deadline of ${deadlineMs} ms passed after ${attempt - 1} attempts`, 'deadline', attempt - 1, key)
      const timeout = new AbortController()
      const timer = setTimeout(() => timeout.abort(new DOMException('attempt timed out', 'TimeoutError')), Math.min(timeoutMs, left))
      const attemptSignal = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal
      let response: Response | undefined
      let error: unknown
      let reason: RetryReason | undefined
      try {
        response = await transport(new Request(base.url, { method: base.method, headers, body, redirect: base.redirect, signal: attemptSignal }))
        reason = await retryReason(response)
      } catch (err) {
        if (signal?.aborted) throw signal.reason
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
      if (budget) budget.onFailure(host)

      const asked = response ? retryAfterMs(response.headers.get('retry-after')) : undefined
      const delayMs = asked ?? backoffDelay(attempt, baseDelayMs, maxDelayMs)
      const retry =
        attempt <= retries &&
        (!budget || budget.canRetry(host)) &&
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
      await sleep(delayMs, signal)
    }
  }
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
 * @throws OnceFetchError when no attempt got an answer; the caller's abort reason when aborted
 * @example
 * const res = await onceFetch('https://bank.example/accounts/alice/deposits', {
 *   method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amount: 100 }),
 * })
 * onceInfo(res) // { key: '0193…', attempts: 2, replayed: true }
 */
export function onceFetch(input: RequestInfo | URL, init?: RequestInit, options?: OnceFetchOptions): Promise<Response> {
  return (options ? createOnceFetch(options) : defaultFetch)(input, init)
}

/**
 * How a response from {@link onceFetch} was obtained: its key, the number
 * of attempts, and whether the server replayed a stored reply.
 *
 * @param response - a response returned by a once fetch
 * @returns the info, or undefined for other responses
 * @example
 * const { attempts, replayed } = onceInfo(res) ?? {}
 */
export function onceInfo(response: Response): OnceInfo | undefined {
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
