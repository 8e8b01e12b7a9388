import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { backoffDelay, retryAfterMs } from '../../src/shared/backoff.js'

describe('retryAfterMs', () => {
  it('reads delay-seconds and HTTP-dates, and ignores garbage', () => {
    expect(retryAfterMs('2')).toBe(2000)
    expect(retryAfterMs(' 0 ')).toBe(0)
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:58 GMT'))).toBe(2000)
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 08:00:00 GMT'))).toBe(0)
    expect(retryAfterMs(null)).toBeUndefined()
    expect(retryAfterMs('soon')).toBeUndefined()
    expect(retryAfterMs('-1')).toBeUndefined()
  })
})

describe('backoffDelay (full jitter)', () => {
  it('stays within [0, min(max, base * 2^(n-1)))', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 60_000 }), fc.double({ min: 0, max: 0.999_999, noNaN: true }), (n, base, max, r) => {
        const d = backoffDelay(n, base, max, () => r)
        expect(d).toBeGreaterThanOrEqual(0)
        expect(d).toBeLessThanOrEqual(Math.min(max, base * 2 ** (n - 1)))
      }),
    )
  })
})
