/**
 * Work on a caller's input grows linearly with its size (review s30 S30-1): a regex that backtracks over a run of
 * blanks or zeros costs seconds for a 100 KB header, before any limit refuses it. Run on Node, whose V8 was
 * quadratic on all three of these (workerd's on the key's trim); each bound is ~20× the linear cost.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { trimOws } from '../../src/shared/ows.js'
import { parseIdempotencyKey } from '../../src/middleware/key.js'
import { keyOfHeader } from '../../src/client/key.js'
import { exactDecimal } from '../../src/middleware/canonical-json.js'
import { canonicalMultipart, withoutBoundary } from '../../src/middleware/canonical-form.js'

const within = (ms: number, work: () => void) => {
  const t0 = performance.now()
  work()
  expect(performance.now() - t0).toBeLessThan(ms)
}
const N = 100_000

describe('input of 100 KB a caller controls costs milliseconds', () => {
  it('an Idempotency-Key with a long inner run of blanks is refused at once, at the edge and in the client', () => {
    for (const blank of [' ', '\t']) {
      within(200, () => expect(parseIdempotencyKey(`a${blank.repeat(N)}a`)).toEqual({ ok: false, error: 'malformed' }))
      within(200, () => expect(keyOfHeader(`a${blank.repeat(N)}a`)).toBeUndefined())
    }
  })

  it('a number with 100 K trailing zeros, and a Content-Type with 100 K blanks', () => {
    within(200, () => expect(exactDecimal(`1${'0'.repeat(N)}1`)).toMatch(/e0$/))
    within(200, () => expect(exactDecimal(`1${'0'.repeat(N)}`)).toBe(`1e${N}`))
    const type = `multipart/form-data;${' '.repeat(N)}x`
    within(200, () => expect(withoutBoundary(type)).toBe(type))
    within(200, () => expect(canonicalMultipart(new Uint8Array(8), type)).toBeUndefined())
  })
})

describe('trimOws', () => {
  it('drops leading and trailing SP and HTAB only, as the old regex did', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(' ', '\t', 'a', '\u00a0', '\v', '"') }), (s) => trimOws(s) === s.replace(/^[ \t]+|[ \t]+$/g, '')),
    )
    expect(trimOws(' \t"abc" ')).toBe('"abc"')
    expect(trimOws('abc\u00a0')).toBe('abc\u00a0')
  })
})
