/**
 * Review s31 (docs) F5–F8, the pages: each sentence the review found at odds with the code now says what the code
 * does (the behaviour is checked in workerd by docs-say-what-code-does.test.ts).
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const page = (name: string) => readFileSync(`docs/${name}`, 'utf8').replace(/\s*\n\s*/g, ' ')

describe('the pages', () => {
  it('F5: errors.md and dispatch.md say only a route with a url origin is relayed; service bindings are not', () => {
    expect(page('errors.md')).toMatch(/`headers-too-large` \| a relayed request \(one that[^|]*only a route with a `url` origin[^|]*service bindings[^|]*is not relayed/)
    expect(page('dispatch.md')).toMatch(/Only a write to a route with at least one `url` origin[^.]*is relayed[^.]*: on a route whose origins are all service bindings \(`fetcher`\) nothing is stored/)
  })

  it('F6: gateway.md names no problem type the code lacks (`overloaded`)', () => {
    expect(page('gateway.md')).not.toMatch(/callers get `overloaded`/)
    expect(page('gateway.md')).toMatch(/Past it callers get `503 stable-area-unavailable`/)
  })

  it('F7: architecture.md gives no schema step count that goes stale', () => {
    expect(page('architecture.md')).not.toMatch(/(\w+) steps so far/)
    expect(page('architecture.md')).toMatch(/`meta\.schema_version`, one step per migration/)
  })

  it('F8: dispatch.md says a replay carries no Server-Timing', () => {
    expect(page('dispatch.md')).toMatch(/a replay carries the stored `Once-Origin` but no `Server-Timing`/)
  })
})
