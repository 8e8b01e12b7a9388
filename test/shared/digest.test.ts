import { describe, expect, it } from 'vitest'
import { sha256Hex } from '../../src/shared/digest.js'

describe('sha256Hex', () => {
  it('matches the FIPS 180-2 test vector', async () => {
    expect(await sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  })

  it('gives the same digest on both sides of the sync/Web Crypto switch', async () => {
    for (const size of [64 * 1024, 64 * 1024 + 1, 300_000]) {
      const bytes = new Uint8Array(size).map((_, i) => i % 253)
      const expected = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('')
      expect(await sha256Hex(bytes)).toBe(expected)
    }
  })
})
