import { z } from 'zod'

/**
 * Schema of an option that must be a function.
 *
 * @example
 * z.strictObject({ onRetry: functionOption.optional() })
 */
export const functionOption = z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', 'expected a function')

/**
 * Checks `options` against `schema` when a factory is called, throwing a
 * `TypeError` that names each offending option, so a bad configuration fails
 * at start-up rather than on a request.
 *
 * @param schema - the zod schema of the options
 * @param options - what the user passed
 * @param where - who is asking, for the message (`once()`, `hono-once/client`)
 * @throws TypeError naming each bad option
 * @example
 * assertOptions(schema, { ttlSeconds: -1 }, 'once()') // TypeError: hono-once: invalid once() options: ttlSeconds: …
 */
export function assertOptions(schema: z.ZodType, options: unknown, where: string): void {
  const result = schema.safeParse(options)
  if (result.success) return
  const lines = result.error.issues.map((issue) => {
    const name = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.') || '(options)'
    return `${name}: ${issue.message}`
  })
  throw new TypeError(`hono-once: invalid ${where} options: ${lines.join('; ')}`)
}
