/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential
 * Backoff and Jitter"): a random delay between 0 and
 * `min(maxMs, baseMs * 2^(retry-1))`.
 *
 * @param retry - 1 for the first retry
 * @param baseMs - first cap
 * @param maxMs - largest cap
 * @param random - source of randomness in [0, 1)
 * @returns the delay in milliseconds
 * @example
 * backoffDelay(3, 100, 5000) // somewhere in [0, 400)
 */
export function backoffDelay(retry: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** (retry - 1)))
}

/**
 * Reads a `Retry-After` header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
 *
 * @param value - the header value
 * @param now - current time, for HTTP-dates
 * @returns milliseconds to wait, or undefined when absent or unreadable
 * @example
 * retryAfterMs('2') // 2000
 * retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:58 GMT')) // 2000
 */
export function retryAfterMs(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  // An HTTP-date names its month ("21 Oct 2015"); Date.parse alone would take "-1" as the year -1.
  const at = /\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b/.test(trimmed) ? Date.parse(trimmed) : Number.NaN
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}
