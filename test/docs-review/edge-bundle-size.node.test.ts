/**
 * Review s31 (docs) F2: docs/limits.md said the edge entry `hono-once` is "about 35 KB" gzipped (against a 25 KB
 * target), and scripts/size.ts that its budgets are enforced by test/client/size.node.test.ts, which held only the
 * client's; `npm run size` printed 63.3 KB, "MISSED". Now limits.md gives the measured size and the guard, the guard
 * is the one TARGETS holds, and the size test holds it for the edge entry too.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { measureSizes, TARGETS } from '../../scripts/size.js'

const limits = readFileSync('docs/limits.md', 'utf8')
const bundle = limits.slice(limits.indexOf('**Bundle.**'), limits.indexOf('\n- **', limits.indexOf('**Bundle.**')))

describe('the hono-once (edge) bundle, as docs/limits.md states it', () => {
  it('is within 10 % of the size the page gives, and within the guard the page, scripts/size.ts and the size test name', async () => {
    const [edge] = await measureSizes(TARGETS.filter((t) => t.name === 'hono-once'))
    const stated = Number(/edge entry\s+\(`hono-once`, without hono\) is about (\d+) KB gzipped/.exec(bundle.replace(/\n\s*/g, ' '))?.[1])
    expect(Math.abs(edge!.gzipBytes / 1024 - stated) / stated).toBeLessThanOrEqual(0.1)
    const guard = Number(/fails\s+past (\d+) KB/.exec(bundle)?.[1])
    expect(guard * 1024).toBe(edge!.maxGzipBytes)
    expect(edge!.ok).toBe(true)
    expect(readFileSync('test/client/size.node.test.ts', 'utf8')).toContain(`${guard} * 1024`)
  }, 60_000)
})
