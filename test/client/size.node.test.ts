import { describe, expect, it } from 'vitest'
import { measureSizes, TARGETS } from '../../scripts/size.js'

describe('the hono-once/client bundle', () => {
  it('stays within 8 KB gzipped, with no zod in it', async () => {
    const [client] = await measureSizes(TARGETS.filter((t) => t.name === 'hono-once/client'))
    expect(client!.gzipBytes).toBeLessThanOrEqual(8 * 1024)
    expect(client!.ok).toBe(true)
    expect(client!.top.some((t) => t.path.includes('node_modules/zod/'))).toBe(false)
  })
})
