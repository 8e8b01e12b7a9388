import * as z from 'zod/mini'
import type { $ZodErrorMap, $ZodIssue, $ZodType } from 'zod/v4/core'

/**
 * Schema of an option that must be a function (a `zod/mini` schema; wrap it
 * with `z.optional(functionOption)`).
 *
 * @example
 * z.strictObject({ onRetry: z.optional(functionOption) })
 */
// Pure, so a bundle that takes only optionsError (the client) leaves zod out.
export const functionOption = /* @__PURE__ */ z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', 'expected a function')

/**
 * Checks `options` against `schema` when a factory is called, throwing a
 * `TypeError` that names each offending option by its full path
 * (`fingerprint.extra`, `replayCache.maxEntries`), so a bad configuration
 * fails at start-up rather than on a request. Takes any zod 4 schema,
 * `zod/mini` or classic; the messages are this module's own, short and in
 * English, because `zod/mini` loads no locale.
 *
 * @param schema - the zod schema of the options
 * @param options - what the user passed
 * @param where - who is asking, for the message (`once()`, `hono-once/client`)
 * @throws TypeError naming each bad option
 * @example
 * assertOptions(schema, { ttlSeconds: -1 }, 'once()') // TypeError: hono-once: invalid once() options: ttlSeconds: expected a number > 0
 */
export function assertOptions(schema: $ZodType, options: unknown, where: string): void {
  const result = z.safeParse(schema, options, { error: message })
  if (result.success) return
  throw optionsError(where, result.error.issues.flatMap((issue) => problemsOf(issue, [])))
}

/**
 * The error every options check throws, in one format:
 * `hono-once: invalid <where> options: <path>: <message>; …`.
 *
 * @param where - who is asking (`once()`, `hono-once/client`)
 * @param problems - one `path: message` per problem
 * @returns the TypeError to throw
 * @example
 * throw optionsError('hono-once/client', ['retries: expected an integer >= 0 and <= 10'])
 */
export function optionsError(where: string, problems: string[]): TypeError {
  return new TypeError(`hono-once: invalid ${where} options: ${problems.join('; ')}`)
}

/** `path: message` lines for one issue; a union that failed inside one of its members reports that member's issues. */
function problemsOf(issue: $ZodIssue, parent: PropertyKey[]): string[] {
  const path = [...parent, ...issue.path]
  const name = (p: PropertyKey[]) => p.map(String).join('.') || '(options)'
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `${name([...path, key])}: unrecognized option`)
  if (issue.code === 'invalid_union') {
    // The member whose issues lie below its root matched the shape: those are the real mistakes.
    const inner = issue.errors.find((issues) => issues.length > 0 && issues.every((i) => i.path.length > 0 || i.code === 'unrecognized_keys'))
    if (inner) return inner.flatMap((i) => problemsOf(i, path))
    return [`${name(path)}: ${issue.errors.map((issues) => issues.map((i) => i.message).join(', ')).join(', or ')}`]
  }
  return [`${name(path)}: ${issue.message}`]
}

/** English messages for the checks option schemas use; a message given in the schema wins. */
const message: $ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type': {
      const input: unknown = issue.input
      // NaN and ±Infinity are of type "number" too: say what they are (a Number(env.X) of an unset var is NaN).
      if (typeof input === 'number' && (issue.expected === 'number' || issue.expected === 'int')) {
        if (!Number.isFinite(input)) return `expected a finite number, got ${String(input)}`
        return `expected an integer, got ${input}`
      }
      return `expected ${issue.expected === 'int' ? 'an integer' : issue.expected}, got ${input === null ? 'null' : Array.isArray(input) ? 'array' : typeof input}`
    }
    case 'invalid_value':
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`
    case 'too_small':
    case 'too_big': {
      const limit = issue.code === 'too_small' ? issue.minimum : issue.maximum
      if (issue.origin === 'array' || issue.origin === 'string') {
        const unit = issue.origin === 'array' ? 'items' : 'characters'
        return `expected ${issue.code === 'too_small' ? 'at least' : 'at most'} ${limit} ${unit}`
      }
      const op = issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<'
      return `expected a number ${op} ${limit}`
    }
    case 'invalid_format':
      return issue.format === 'regex' ? `expected a string matching ${issue.pattern}` : `expected ${issue.format}`
    default:
      return undefined
  }
}

