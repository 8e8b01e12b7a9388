import { env } from 'cloudflare:workers'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MAX_KEY_LENGTH, parseIdempotencyKey } from '../../src/middleware/key.js'
import { bank, newKey, problemOf } from '../helpers.js'

describe('parseIdempotencyKey', () => {
  it('never throws, and every key it accepts is 1–255 printable ASCII', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (header) => {
        const r = parseIdempotencyKey(header)
        if (r.ok) {
          expect(r.key.length).toBeGreaterThanOrEqual(1)
          expect(r.key.length).toBeLessThanOrEqual(MAX_KEY_LENGTH)
          expect(r.key).toMatch(/^[\x20-\x7e]+$/)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('round-trips any printable key written as an sf-string', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 255 }), (key) => {
        const header = `"${key.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
        expect(parseIdempotencyKey(header)).toEqual({ ok: true, key })
      }),
    )
  })
})

describe('bad input never crashes the middleware', () => {
  it('answers every header value and body with a documented status, never a 500', async () => {
    const { app } = bank({ maxBodyBytes: 256 })
    const header = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'grapheme-ascii', maxLength: 300 }))
    const body = fc.oneof(fc.string({ maxLength: 400 }), fc.json({ maxDepth: 3 }))
    await fc.assert(
      fc.asyncProperty(header, body, async (key, payload) => {
        let res: Response
        try {
          res = await app.request('/deposits', { method: 'POST', headers: { 'idempotency-key': key }, body: payload }, env)
        } catch {
          return // the Request constructor itself refused the header value (e.g. a newline): it never reached us
        }
        expect([201, 400, 413, 422]).toContain(res.status)
        if (res.status !== 201) expect((await problemOf(res)).status).toBe(res.status)
      }),
      { numRuns: 150 },
    )
  })
})

describe('bytes outside printable ASCII around a key (issue 7.12)', () => {
  const around = {
    VT: '\u000b',
    FF: '\u000c',
    NBSP: '\u00a0',
    BOM: '\ufeff',
    'LINE SEPARATOR': '\u2028',
    'IDEOGRAPHIC SPACE': '\u3000',
  }
  it.each(Object.entries(around))('refuses a key with %s before or after it, bare or quoted, instead of aliasing the plain key', (_name, ch) => {
    for (const header of [`abc${ch}`, `${ch}abc`, `"abc"${ch}`, `${ch}"abc"`]) {
      expect(parseIdempotencyKey(header)).toEqual({ ok: false, error: 'malformed' })
    }
    // HTTP's own optional whitespace is not part of the value.
    expect(parseIdempotencyKey(' \tabc \t')).toEqual({ ok: true, key: 'abc' })
  })

  it('answers 400 where the runtime lets such a byte through to the middleware (latin-1 header values)', async () => {
    const { post, effects } = bank()
    const key = newKey()
    expect((await post(key)).status).toBe(201)
    for (const ch of ['\u000b', '\u000c', '\u00a0']) {
      let res: Response
      try {
        res = await post(undefined, { amount: 100 }, { 'idempotency-key': `${key}${ch}` })
      } catch {
        continue // the runtime refused to build such a header: it never reaches a handler
      }
      expect(res.status).toBe(400)
    }
    expect(effects.get(key)).toBe(1)
  })
})
