/**
 * `hono-once/client`: a fetch that names each logical call once and retries
 * it safely, for browsers, Node and Workers.
 *
 * @example
 * import { hc } from 'hono/client'
 * import { createOnceFetch } from 'hono-once/client'
 * const client = hc<AppType>('https://api.example', { fetch: createOnceFetch() })
 * @module
 */
export { createOnceFetch, onceFetch, onceInfo, type OnceFetch } from './once-fetch.js'
export { RetryBudget, type RetryBudgetOptions } from '../shared/retry-budget.js'
export { backoffDelay, retryAfterMs } from '../shared/backoff.js'
export { headerOfKey } from './key.js'
export { OnceFetchError, type OnceFetchErrorReason, type OnceFetchOptions, type OnceInfo, type RetryInfo, type RetryReason } from './types.js'
