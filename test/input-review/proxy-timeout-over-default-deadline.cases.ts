import { describe, expect, it } from 'vitest'
import { parseGatewayConfig } from '../../src/gateway.js'
import { proxy } from '../../src/index.js'

// Review s31 (input), finding 8: the same option is refused by the gateway ("routes.0.timeoutMs: expected at most
// deadlineMs (8000, the default): ... a longer timeout is cut to it") and by proxy() when deadlineMs is given; proxy()
// with timeoutMs alone above the default deadline was accepted and silently cut to 8000 (dispatch.ts: Math.min). Now
// refused at start-up against the deadline it will run under, given or default.
describe('proxy() refuses a timeoutMs above the deadline it will run under, given or default', () => {
  const origins = [{ name: 'eu', url: 'https://eu.example' }]
  it('timeoutMs: 20000 without deadlineMs', () => {
    expect(() => parseGatewayConfig({ origins, routes: [{ path: '/*', timeoutMs: 20_000 }] })).toThrow(/routes\.0\.timeoutMs: expected at most deadlineMs \(8000, the default\)/)
    expect(() => proxy({ origins, timeoutMs: 20_000, deadlineMs: 8000 })).toThrow(/timeoutMs: expected at most deadlineMs \(8000\)/)
    expect(() => proxy({ origins, timeoutMs: 20_000 })).toThrow(/invalid proxy\(\) options: timeoutMs: expected at most deadlineMs \(8000, the default\)/)
  })

  it('at the edges: equal to the deadline is accepted, one more is refused; a larger deadline makes room', () => {
    expect(() => proxy({ origins, timeoutMs: 8000 })).not.toThrow()
    expect(() => proxy({ origins, timeoutMs: 8001 })).toThrow(/timeoutMs: expected at most deadlineMs \(8000, the default\)/)
    expect(() => proxy({ origins, timeoutMs: 20_000, deadlineMs: 20_000 })).not.toThrow()
    expect(() => proxy({ origins, timeoutMs: 20_001, deadlineMs: 20_000 })).toThrow(/timeoutMs: expected at most deadlineMs \(20000\)/)
  })
})
