/** Review s31 (docs) F3, the page: errors.md's 503 row lists the keyless onceObject() case that is not retryable. */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

describe('docs/errors.md on 503 stable-area-unavailable', () => {
  it('says a keyless onceObject() request may have taken effect and is answered retryable: false', () => {
    const row = readFileSync('docs/errors.md', 'utf8').split('\n').find((l) => l.includes('`stable-area-unavailable`'))!
    expect(row).toMatch(/without a key[^|]*may have taken effect[^|]*`retryable: false`/)
  })
})
