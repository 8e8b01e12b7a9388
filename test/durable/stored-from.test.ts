import { describe, expect, it } from 'vitest'
import { storedFrom } from '../../src/durable/catch-up.js'
import { replayFilter } from '../../src/shared/reply.js'

const headers: [string, string][] = [
  ['content-type', 'application/json'],
  ['location', '/accounts/a'],
  ['access-control-allow-origin', 'https://first.example'],
  ['x-ratelimit-remaining', '9'],
  ['vary', 'Origin'],
  ['set-cookie', 'a=1'],
  ['x-request-id', 'first'],
]
const answer = { origin: 'eu', reply: { status: 201, headers, body: new TextEncoder().encode('{}') } }

describe('a reply the alarm commits keeps the headers a Worker commit keeps (one replay filter)', () => {
  it('without replayHeaders: the default rule, caller headers of outer middleware dropped', () => {
    const kept = storedFrom(answer).headers.filter(([name]) => name !== 'once-origin') // the edge's own, added after the filter
    expect(kept).toEqual(headers.filter(([name]) => replayFilter(undefined)(name)))
    expect(kept.map(([name]) => name)).toEqual(['content-type', 'location'])
  })

  it('with replayHeaders: exactly the listed ones', () => {
    const kept = storedFrom(answer, { replayHeaders: ['location', 'access-control-allow-origin'], maxReplyBytes: 1024 }).headers.filter(([name]) => name !== 'once-origin')
    expect(kept.map(([name]) => name)).toEqual(['location', 'access-control-allow-origin'])
  })

  it("keeps Content-Encoding whatever replayHeaders lists, as the edge's own commit does (review s29c C4)", () => {
    const reply = { status: 201, headers: [['content-encoding', 'zstd'], ['location', '/x'], ['x-other', '1']] as [string, string][], body: new Uint8Array([1, 2, 3]) }
    const stored = storedFrom({ origin: 'eu', reply }, { replayHeaders: ['location'], maxReplyBytes: 1024 })
    expect(stored.headers).toEqual([['content-encoding', 'zstd'], ['location', '/x']])
  })
})
