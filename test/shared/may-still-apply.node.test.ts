/**
 * The one rule for "nothing was applied" (src/shared/applied.ts mayStillApply): only the receiver's own word says
 * so. Read by the refusal passed to a client (shared/outcome.ts refused) and by an operator's abandon
 * (durable/abandon.ts); review s32 (ordered) found the abandon reading any non-applied answer as "not applied".
 */
import { describe, expect, it } from 'vitest'
import { mayStillApply, STILL_APPLYING, UNMARKED } from '../../src/shared/applied.js'
import { refused } from '../../src/shared/outcome.js'
import type { AttemptRecord, OriginReply } from '../../src/shared/types.js'

const refusal: OriginReply = { status: 500, headers: [['once-applied', '?0']], body: new Uint8Array() }
const eu = { name: 'eu', url: 'https://eu.example' }
const attempt = (outcome: AttemptRecord['outcome'], reason?: string): AttemptRecord => ({ origin: 'us', attempt: 1, outcome, ms: 5, ...(reason ? { reason } : {}) })

describe('mayStillApply', () => {
  it.each([
    [STILL_APPLYING, 409, true],
    [UNMARKED, 502, true],
    [UNMARKED, 503, true],
    [UNMARKED, 504, true],
    [UNMARKED, 408, true],
    [UNMARKED, 403, false],
    [UNMARKED, 302, false],
    [UNMARKED, 413, false],
    ['handler-failed', 500, false],
    ['store-unavailable', 503, false],
    [undefined, 503, false],
  ] as const)('%s %i → %s', (reason, status, expected) => {
    expect(mayStillApply(reason, status)).toBe(expected)
  })
})

describe('a refusal for good is passed on only when no attempt may have applied the request', () => {
  it.each([
    ['a timeout', attempt('timeout')],
    ['a reset', attempt('network')],
    ['an origin still applying it', attempt(409, STILL_APPLYING)],
    ["a proxy's 504 page in front of the receiver", attempt(504, UNMARKED)],
  ])('not after %s: a retryable failure instead', (_, other) => {
    const outcome = refused([attempt(500, 'handler-failed'), other], eu, refusal)
    expect(outcome).toMatchObject({ kind: 'failed' })
    expect('refusal' in outcome && outcome.refusal).toBeFalsy()
  })

  it.each([
    ["a WAF's 403 page", attempt(403, UNMARKED)],
    ['the receiver saying it is unavailable', attempt(503, 'store-unavailable')],
  ])('after %s: passed on', (_, other) => {
    expect(refused([attempt(500, 'handler-failed'), other], eu, refusal)).toMatchObject({ kind: 'failed', refusal: { origin: 'eu' } })
  })
})
