/**
 * Review s31 (docs) F1, by source: shared/applied.ts once wrote a `reply-lost` body by hand (status 502, the catalogue
 * says 500). Every place in src/ that sets `application/problem+json` on a body it builds is known here and takes the
 * body from problem() or problemParts() (shared/problem.ts, the one catalogue); a new one fails this test until it does.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

describe('problem bodies come from the catalogue', () => {
  it('no file in src/ but shared/problem.ts writes a problem body: each place that sets application/problem+json is known and takes its bytes from problem()/problemParts()', () => {
    const files: string[] = []
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = `${d}/${n}`
        if (statSync(p).isDirectory()) walk(p)
        else if (n.endsWith('.ts') && !n.endsWith('.test.ts')) files.push(p)
      }
    }
    walk('src')
    // A line that sets the media type (a header pair or a record member); reading it (includes, startsWith) is not building.
    const sets = /['"]content-type['"]\s*[,:]\s*['"]application\/problem\+json/i
    const writers = files.filter((f) => readFileSync(f, 'utf8').split('\n').some((l) => sets.test(l)))
    // src/durable/abandon.ts copies the status and bytes of a problem() response into a stored reply.
    expect(writers.sort()).toEqual(['src/durable/abandon.ts', 'src/shared/problem.ts'])
    for (const f of writers.filter((w) => w !== 'src/shared/problem.ts')) expect(readFileSync(f, 'utf8')).toMatch(/\bproblem(Parts)?\(/)
    // And no file spells a problem's own `status:` next to a `type` of the catalogue's base: bodies are not hand-built.
    const handBuilt = files.filter((f) => f !== 'src/shared/problem.ts' && /\{\s*type:[^}]*(PROBLEM_BASE|hono-once\.dev\/problems)[^}]*status:/s.test(readFileSync(f, 'utf8')))
    expect(handBuilt).toEqual([])
    // The base of the types is spelt in code in one place only (comments aside): every other file uses PROBLEM_BASE.
    const code = (f: string) => readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, '')
    expect(files.filter((f) => f !== 'src/shared/problem.ts' && code(f).includes('hono-once.dev/problems'))).toEqual([])
  })
})
