import { optionsError } from '../shared/options.js'
import { RetryBudget } from '../shared/retry-budget.js'
import type { OnceFetchOptions } from './types.js'

/** A check of one option's value: what was expected, or undefined when it is fine. */
type Check = (value: unknown) => string | undefined

const int =
  (min: number, max?: number): Check =>
  (v) =>
    Number.isSafeInteger(v) && (v as number) >= min && (max === undefined || (v as number) <= max)
      ? undefined
      : `expected an integer >= ${min}${max === undefined ? '' : ` and <= ${max}`}`

const fn: Check = (v) => (typeof v === 'function' ? undefined : 'expected a function')

// Hand-written rather than zod: zod/mini alone would put the browser bundle over its 8 KB (gzipped) target.
// Typed by OnceFetchOptions' keys, so a new option cannot go unchecked.
/** The longest timer a runtime keeps: `setTimeout` takes a 32-bit signed delay, and a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

const checks: Record<keyof OnceFetchOptions, Check> = {
  retries: int(0, 10),
  timeoutMs: int(1, MAX_TIMER_MS),
  deadlineMs: int(1, MAX_TIMER_MS),
  baseDelayMs: int(0, MAX_TIMER_MS),
  maxDelayMs: int(0, MAX_TIMER_MS),
  methods: (v) => (Array.isArray(v) && v.every((m) => typeof m === 'string' && /^[A-Za-z]+$/.test(m)) ? undefined : 'expected HTTP method names'),
  generateKey: fn,
  budget: (v) => (v === false || v instanceof RetryBudget ? undefined : 'expected false or a RetryBudget'),
  onRetry: fn,
  fetch: fn,
}

/**
 * Checks the options of `createOnceFetch` when it is called, in the same
 * words as `once()`'s: a `TypeError` naming each bad or unknown option.
 * An option set to `undefined` takes its default.
 *
 * @param options - what the user passed
 * @throws TypeError naming each bad option
 * @example
 * assertClientOptions({ retries: -1 }) // TypeError: hono-once: invalid hono-once/client options: retries: expected an integer >= 0 and <= 10
 */
export function assertClientOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw optionsError('hono-once/client', ['(options): expected an object'])
  }
  const problems: string[] = []
  for (const [name, value] of Object.entries(options)) {
    const check = Object.hasOwn(checks, name) ? checks[name as keyof OnceFetchOptions] : undefined
    const problem = check ? (value === undefined ? undefined : check(value)) : 'unrecognized option'
    if (problem) problems.push(`${name}: ${problem}`)
  }
  if (problems.length > 0) throw optionsError('hono-once/client', problems)
}
