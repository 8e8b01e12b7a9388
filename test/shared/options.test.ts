import * as zc from 'zod'
import * as z from 'zod/mini'
import { describe, expect, it } from 'vitest'
import { assertOptions, functionOption } from '../../src/shared/options.js'

/** A strict schema shaped like once()'s: nested strict objects, alone and inside unions. */
const schema = z.strictObject({
  ttlSeconds: z.optional(z.int().check(z.positive())),
  limits: z.optional(z.strictObject({ maxEntries: z.optional(z.int().check(z.minimum(1))) })),
  fingerprint: z.optional(z.union([functionOption, z.strictObject({ normalizeJson: z.optional(z.boolean()) })])),
  replayCache: z.optional(z.union([z.literal(false), z.strictObject({ maxEntries: z.optional(z.int()) })])),
})

const messageOf = (options: unknown, s: Parameters<typeof assertOptions>[0] = schema) => {
  try {
    assertOptions(s, options, 'once()')
  } catch (e) {
    expect(e).toBeInstanceOf(TypeError)
    return (e as Error).message
  }
  return undefined
}

describe('assertOptions', () => {
  it('accepts good options', () => {
    expect(messageOf({})).toBeUndefined()
    expect(messageOf({ ttlSeconds: 60, limits: { maxEntries: 5 }, fingerprint: () => '', replayCache: false })).toBeUndefined()
    expect(messageOf({ fingerprint: { normalizeJson: true }, replayCache: { maxEntries: 10 } })).toBeUndefined()
  })

  it('names an unknown key nested in an object by its full path', () => {
    expect(messageOf({ limits: { size: 1 } })).toBe('hono-once: invalid once() options: limits.size: unrecognized option')
    expect(messageOf({ fingerprint: { extra: true } })).toBe('hono-once: invalid once() options: fingerprint.extra: unrecognized option')
    expect(messageOf({ replayCache: { size: 1 } })).toBe('hono-once: invalid once() options: replayCache.size: unrecognized option')
    expect(messageOf({ oops: 1, limits: { a: 1, b: 2 } })).toBe('hono-once: invalid once() options: limits.a: unrecognized option; limits.b: unrecognized option; oops: unrecognized option')
  })

  it('names a bad value by its full path, in English even with zod/mini', () => {
    expect(messageOf({ ttlSeconds: 0 })).toBe('hono-once: invalid once() options: ttlSeconds: expected a number > 0')
    expect(messageOf({ ttlSeconds: 1.5 })).toBe('hono-once: invalid once() options: ttlSeconds: expected an integer, got 1.5')
    expect(messageOf({ limits: { maxEntries: 0 } })).toBe('hono-once: invalid once() options: limits.maxEntries: expected a number >= 1')
    expect(messageOf({ replayCache: { maxEntries: 'x' } })).toBe('hono-once: invalid once() options: replayCache.maxEntries: expected number, got string')
    expect(messageOf({ fingerprint: 3 })).toBe('hono-once: invalid once() options: fingerprint: expected a function, or expected object, got number')
    expect(messageOf(null)).toBe('hono-once: invalid once() options: (options): expected object, got null')
  })

  it('takes classic zod schemas too', () => {
    const classic = zc.strictObject({ cache: zc.strictObject({ maxBytes: zc.number().optional() }).optional() })
    expect(messageOf({ cache: { size: 1 } }, classic)).toBe('hono-once: invalid once() options: cache.size: unrecognized option')
  })
})
