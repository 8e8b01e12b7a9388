import { describe, expect, it } from 'vitest'
import { once, onceObject, proxy } from '../../src/index.js'
import { memoryStore, onceReceiver } from '../../src/origin/index.js'
import { parseGatewayConfig } from '../../src/gateway.js'

// Review s31 (input): a bad option fails at start-up naming it (DESIGN §8), but for NaN and ±Infinity (a
// Number(env.X) of an unset or misspelled var; 1e999 in ONCE_CONFIG's JSON) the reason reads
// "expected number, got number", which contradicts itself and does not say what is wrong with the value.
const origins = [{ name: 'eu', url: 'https://eu.example' }]
const cases: [string, () => unknown][] = [
  ['once() ttlSeconds: NaN', () => once({ ttlSeconds: Number(undefined) })],
  ['once() maxBodyBytes: Infinity', () => once({ maxBodyBytes: Infinity })],
  ['onceObject() waitMs: NaN', () => onceObject(() => null as never, { waitMs: Number.NaN })],
  ['proxy() timeoutMs: NaN', () => proxy({ origins, timeoutMs: Number.NaN })],
  ['onceReceiver() maxBodyBytes: NaN', () => onceReceiver({ store: memoryStore(), maxBodyBytes: Number.NaN })],
  ['ONCE_CONFIG keys.ttlSeconds: 1e999', () => parseGatewayConfig(`{"origins":[{"name":"eu","url":"https://eu.example"}],"routes":[{"path":"/*"}],"keys":{"ttlSeconds":1e999}}`)],
]

describe('an option that is NaN or Infinity is refused with a reason that says so', () => {
  it.each(cases)('%s', (_name, build) => {
    let message = ''
    try {
      build()
    } catch (err) {
      message = (err as Error).message
    }
    expect(message).toMatch(/options: \w+(\.\w+)?: /) // refused, naming the option (this holds)
    expect(message).not.toMatch(/expected number, got number/)
    expect(message).toMatch(/NaN|Infinity|finite/)
  })
})
