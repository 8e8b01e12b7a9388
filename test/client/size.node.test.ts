import { describe, expect, it } from 'vitest'
import { measureSizes, TARGETS } from '../../scripts/size.js'

// The budgets scripts/size.ts (npm run size) states, held here: the only test of the bundles' sizes.
describe('the hono-once/client bundle', () => {
  it('stays within 8 KB gzipped, with no zod in it', async () => {
    const [client] = await measureSizes(TARGETS.filter((t) => t.name === 'hono-once/client'))
    expect(client!.gzipBytes).toBeLessThanOrEqual(8 * 1024)
    expect(client!.ok).toBe(true)
    expect(client!.top.some((t) => t.path.includes('node_modules/zod/'))).toBe(false)
  })
})

describe('the hono-once (edge) bundle, parsed at every cold start of a Worker', () => {
  it('stays within its 70 KB gzipped guard (63.5 KB measured in December 2026; docs/limits.md)', async () => {
    const [edge] = await measureSizes(TARGETS.filter((t) => t.name === 'hono-once'))
    expect(edge!.maxGzipBytes).toBe(70 * 1024)
    expect(edge!.gzipBytes).toBeLessThanOrEqual(70 * 1024)
    expect(edge!.ok).toBe(true)
    // hono and cloudflare:* stay out of it: the app brings its own hono.
    expect(edge!.top.some((t) => t.path.includes('node_modules/hono/'))).toBe(false)
  }, 60_000)
})
