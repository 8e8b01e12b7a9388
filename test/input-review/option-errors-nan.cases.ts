import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { once, onceObject, proxy } from '../../src/index.js'
import { memoryStore, onceReceiver } from '../../src/origin/index.js'
import { parseGatewayConfig } from '../../src/gateway.js'

// Review s31 (input), finding 6: a bad option fails at start-up naming it (DESIGN §8), and for NaN and ±Infinity (a
// Number(env.X) of an unset or misspelled var; 1e999 in ONCE_CONFIG's JSON) the reason says what is wrong with the value
// ("expected a finite number, got NaN"), where it read "expected number, got number". The rule is in the shared error
// map (src/shared/options.ts), so every factory and every numeric option says it.
const origins = [{ name: 'eu', url: 'https://eu.example' }]
const cases: [string, () => unknown][] = [
  ['once() ttlSeconds: NaN', () => once({ ttlSeconds: Number(undefined) })],
  ['once() maxBodyBytes: Infinity', () => once({ maxBodyBytes: Infinity })],
  ['onceObject() waitMs: NaN', () => onceObject(() => null as never, { waitMs: Number.NaN })],
  ['proxy() timeoutMs: NaN', () => proxy({ origins, timeoutMs: Number.NaN })],
  ['onceReceiver() maxBodyBytes: NaN', () => onceReceiver({ store: memoryStore(), maxBodyBytes: Number.NaN })],
  ['ONCE_CONFIG keys.ttlSeconds: 1e999', () => parseGatewayConfig(`{"origins":[{"name":"eu","url":"https://eu.example"}],"routes":[{"path":"/*"}],"keys":{"ttlSeconds":1e999}}`)],
]

const messageOf = (build: () => unknown): string => {
  try {
    build()
  } catch (err) {
    return (err as Error).message
  }
  return ''
}

describe('an option that is NaN or Infinity is refused with a reason that says so', () => {
  it.each(cases)('%s', (_name, build) => {
    const message = messageOf(build)
    expect(message).toMatch(/options: \w+(\.\w+)?: /) // refused, naming the option (this held before)
    expect(message).not.toMatch(/expected number, got number/)
    expect(message).toMatch(/expected a finite number, got (NaN|-?Infinity)/)
  })

  // Every numeric option of every factory, nested ones and those that also take a string ('auto') included.
  const numeric: [string, string, (value: number) => unknown][] = [
    ...['shards', 'ttlSeconds', 'leaseMs', 'maxRunMs', 'waitMs', 'maxBodyBytes', 'maxReplyBytes'].map((k): [string, string, (v: number) => unknown] => ['once()', k, (v) => once({ [k]: v })]),
    ['once()', 'replayCache.maxEntries', (v) => once({ replayCache: { maxEntries: v } })],
    ...['ttlSeconds', 'leaseMs', 'maxRunMs', 'waitMs', 'maxBodyBytes', 'maxReplyBytes'].map((k): [string, string, (v: number) => unknown] => ['onceObject()', k, (v) => onceObject(() => null as never, { [k]: v })]),
    ...['timeoutMs', 'deadlineMs', 'hedgeAfterMs', 'maxAttempts', 'maxResponseBytes', 'logRetentionMs', 'poisonAfterMs'].map((k): [string, string, (v: number) => unknown] => ['proxy()', k, (v) => proxy({ origins, [k]: v })]),
    ['proxy()', 'breaker.failures', (v) => proxy({ origins, breaker: { failures: v } })],
    ...['maxBodyBytes', 'waitMs', 'gapWaitMs', 'maxRunMs'].map((k): [string, string, (v: number) => unknown] => ['onceReceiver()', k, (v) => onceReceiver({ store: memoryStore(), [k]: v })]),
    ['ONCE_CONFIG', 'shards', (v) => parseGatewayConfig({ origins, routes: [{ path: '/*' }], shards: v })],
    ...['ttlSeconds', 'leaseMs', 'maxRunMs', 'waitMs', 'maxBodyBytes', 'maxReplyBytes'].map((k): [string, string, (v: number) => unknown] => ['ONCE_CONFIG', `keys.${k}`, (v) => parseGatewayConfig({ origins, routes: [{ path: '/*' }], keys: { [k]: v } })]),
    ...['timeoutMs', 'deadlineMs', 'hedgeAfterMs', 'maxAttempts', 'maxResponseBytes'].map((k): [string, string, (v: number) => unknown] => ['ONCE_CONFIG', `routes.0.${k}`, (v) => parseGatewayConfig({ origins, routes: [{ path: '/*', [k]: v }] })]),
  ]

  it('every numeric option of every factory: NaN, Infinity and -Infinity are "expected a finite number, got <value>"', () => {
    fc.assert(
      fc.property(fc.constantFrom(...numeric), fc.constantFrom(Number.NaN, Infinity, -Infinity), ([where, option, build], value) => {
        const message = messageOf(() => build(value))
        expect(message, `${where} ${option}`).toContain(`invalid ${where} options: `)
        expect(message, `${where} ${option}`).toContain(`${option}: `)
        expect(message, `${where} ${option}`).toMatch(new RegExp(`${option.replace(/\./g, '\\.')}: (expected "auto", or )?expected a finite number, got ${String(value)}`))
      }),
      { numRuns: 300 },
    )
  })

  it('a finite number of the wrong kind is named by its value, never "got number"', () => {
    expect(messageOf(() => once({ ttlSeconds: 1.5 }))).toMatch(/ttlSeconds: expected an integer, got 1\.5$/)
    expect(messageOf(() => proxy({ origins, maxAttempts: 2.5 }))).toMatch(/maxAttempts: expected an integer, got 2\.5$/)
  })
})
