import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type CachedReply, ReplyCache } from '../../src/middleware/reply-cache.js'

const entry = (reply: Partial<CachedReply['reply']>): CachedReply => ({
  fingerprint: 'f',
  requestId: 'r',
  expiresAt: Date.now() + 60_000,
  reply: { status: 201, headers: [], body: new Uint8Array(), ...reply },
})

describe('the isolate reply cache: its byte bound counts what an entry holds (review s29 S11)', () => {
  it('onDuplicate args and headers count, not the body alone: 100 entries of ~104 KB against 1 MiB keep about 10', () => {
    const cache = new ReplyCache({ maxEntries: 1000, maxBytes: 1024 * 1024 })
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, entry({ headers: [['x-big', 'y'.repeat(4000)]], args: { note: 'x'.repeat(100_000) } }))
    expect(cache.size).toBeGreaterThanOrEqual(9)
    expect(cache.size).toBeLessThanOrEqual(10)
    // The most recent stay.
    expect(cache.get('k99', Date.now())).toBeDefined()
    expect(cache.get('k0', Date.now())).toBeUndefined()
  })

  it('never holds more than its bounds, whatever is set and read (property)', () => {
    const weight = (e: CachedReply) => e.reply.body.byteLength + e.reply.headers.reduce((n, [a, b]) => n + a.length + b.length, 0) + (e.reply.args === undefined ? 0 : JSON.stringify(e.reply.args).length)
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ key: fc.integer({ min: 0, max: 20 }), body: fc.nat(3000), header: fc.nat(2000), args: fc.option(fc.nat(3000)), read: fc.boolean() }),
          { maxLength: 80 },
        ),
        (ops) => {
          const maxBytes = 8000
          const cache = new ReplyCache({ maxEntries: 5, maxBytes })
          const all = new Map<string, CachedReply>()
          for (const op of ops) {
            const key = `k${op.key}`
            if (op.read) {
              cache.get(key, Date.now())
              continue
            }
            const e = entry({ body: new Uint8Array(op.body), headers: [['x', 'y'.repeat(op.header)]], ...(op.args === null ? {} : { args: 'a'.repeat(op.args) }) })
            all.set(key, e)
            cache.set(key, e)
          }
          expect(cache.size).toBeLessThanOrEqual(5)
          let held = 0
          for (const [key, e] of all) if (cache.get(key, Date.now()) === e) held += weight(e)
          expect(held).toBeLessThanOrEqual(maxBytes)
        },
      ),
    )
  })

  it('gives each hit its own copy of the onDuplicate args: what one duplicate does to them never reaches the next', () => {
    const cache = new ReplyCache()
    cache.set('k', entry({ args: { items: [1, 2] } }))
    const first = cache.get('k', Date.now())!.reply.args as { items: number[] }
    first.items.push(3)
    expect(cache.get('k', Date.now())!.reply.args).toEqual({ items: [1, 2] })
  })
})
