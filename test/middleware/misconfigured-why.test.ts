/**
 * A Durable Object call that fails for good is answered 500 misconfigured with a reason a client may read: hono-once's
 * own words, or a fixed sentence, never the text of a user class's error (a constructor that threw a TypeError whose
 * message matched the runtime's "not a function"), which goes to the log (review s32 object, left by the writer).
 */
import { describe, expect, it, vi } from 'vitest'
import { misconfiguredWhy, rpcFault, rpcProblem } from '../../src/middleware/rpc.js'

describe('misconfiguredWhy', () => {
  it.each([
    new TypeError('postgres://ledger:s3cr3t-pa55@db.internal is not a function'),
    new Error('The RPC receiver does not implement "admit" (s3cr3t-pa55)'),
    'x is not a Durable Object: s3cr3t-pa55',
  ])('keeps a foreign error text out of the answer, and logs it: %s', async (err) => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      expect(rpcFault(err)).toBe('misconfigured')
      const body = await rpcProblem(err, '/deposits', 'k-1', 'POST').text()
      expect(body).not.toContain('s3cr3t')
      expect(body).toContain('cannot be used')
      expect(error.mock.calls.some((args) => args.some((a) => String(a).includes('s3cr3t')))).toBe(true)
    } finally {
      error.mockRestore()
    }
  })

  it("passes hono-once's own words on", () => {
    expect(misconfiguredWhy(new Error('hono-once misconfigured: Account has no app.'))).toBe('Account has no app')
  })
})
