import { describe, expect, it } from 'vitest'
import { ONCE_HEADERS, parseNoop, parseSequence } from '../../src/shared/wire.js'

describe('wire: header names (DESIGN §6)', () => {
  it('names every header of the contract; Once-Signature is gone (RFC 9421 Signature-Input and Signature, RFC 9530 Content-Digest)', () => {
    expect(Object.values(ONCE_HEADERS).sort()).toEqual(
      [
        'Content-Digest',
        'Idempotency-Key',
        'Once-Applied',
        'Once-Attempt',
        'Once-Domain',
        'Once-Expected-Sequence',
        'Once-Noop',
        'Once-Origin',
        'Once-Principal',
        'Once-Request-Id',
        'Once-Sequence',
        'Signature',
        'Signature-Input',
      ].sort(),
    )
  })
})

describe('parseSequence', () => {
  it.each([
    ['1', 1],
    ['42', 42],
    [String(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
  ])('reads %j', (value, n) => {
    expect(parseSequence(value)).toBe(n)
  })

  it.each(['', '0', '-1', '+1', '007', '1.0', '1e3', ' 1', '1 ', 'abc', '0x10', '9007199254740992', '99999999999999999', '1,2', '١'])(
    'refuses %j',
    (value) => {
      expect(parseSequence(value)).toBeUndefined()
    },
  )
})

describe('parseNoop', () => {
  it('reads RFC 8941 Boolean items only (their parameters ignored)', () => {
    expect(parseNoop('?1')).toBe(true)
    expect(parseNoop('?0')).toBe(false)
    expect(parseNoop('?1;a=1')).toBe(true)
    for (const v of ['1', 'true', '?', '?2', '"?1"', '?1, ?0', '']) expect(parseNoop(v)).toBeUndefined()
  })
})
