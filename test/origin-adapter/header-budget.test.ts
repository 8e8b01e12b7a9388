import { env } from 'cloudflare:workers'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { startOrigins } from '../farm.js'
import { newKey } from '../helpers.js'
import { bank, list, restoreFetch, stateOf, wrapFetch } from './domains.js'

/**
 * (Review s30b.) admit.ts's 8 KiB budget counts the path and the forwarded headers, but every forwarded
 * header is also named in the edge's Signature-Input ("name" + 1 space, ~name+3 bytes each), which the budget
 * does not count. Many short headers under the budget make a request no Node replica's server takes (16 KiB):
 * admitted, logged, and answered 431 by every replica before the receiver: the domain is held up (poison only
 * after poisonAfterMs, 10 minutes by default), which the budget was meant to prevent.
 */

afterEach(restoreFetch)

describe('a relayed request just under the forwarded-header budget, made of many short headers', () => {
  it('either is refused 431 at the edge or reaches the replicas (not a 431 from their servers)', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const origins = await startOrigins(['eu', 'us'], { secrets: { TEST_SIGNING_SECRET: env.TEST_SIGNING_SECRET } })
    const seen: number[] = []
    const sent: number[] = []
    wrapFetch(list(origins).map((o) => o.url), async (request, send) => {
      let bytes = new URL(request.url).pathname.length + new URL(request.url).search.length + 20
      request.headers.forEach((v, n) => (bytes += n.length + v.length + 4))
      sent.push(bytes)
      const res = await send()
      seen.push(res.status)
      return res
    })
    const deposit = bank(list(origins), { maxAttempts: 1, secret: { env: 'TEST_SIGNING_SECRET' } })
    const account = `acct-${crypto.randomUUID().slice(0, 8)}`
    expect((await deposit(account, newKey(), 1)).status).toBe(201)
    const headers: Record<string, string> = {}
    // Under 8 KiB of path and forwarded headers: 50 empty headers with 158-character names (162 bytes each, 8100 in
    // all, the path ~30). Each name is also in Signature-Input (+161 bytes): ~16.9 KB on the wire, over Node's 16 KiB.
    for (let i = 0; i < 50; i++) headers[`x-${'n'.repeat(153)}${String(i).padStart(3, '0')}`] = ''
    seen.length = 0
    const res = await deposit(account, newKey(), 1, headers)
    const state = await stateOf(account)
    warn.mockRestore()
    error.mockRestore()
    expect(res.status).toBe(431)
    expect(seen).toEqual([])
    expect(state?.head).toBe(1) // nothing logged
  })
})
