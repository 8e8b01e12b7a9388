/**
 * The examples docs/durable-state.md shows are the ones the tests run (docs-examples.ts): each region between its
 * markers is in the page, line for line (indentation aside). Review s32 object M3, M4: examples that were only
 * type-checked answered a malformed body with a 500 and marked a cart paid on a declined charge.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const read = (file: string) => readFileSync(join(process.cwd(), file), 'utf8')
const lines = (text: string) => text.split('\n').map((line) => line.trim())

/** The regions of `source` between `// ---- from <doc> ----` and `// ---- end ----`, each as trimmed lines. */
function regions(source: string): string[][] {
  const found: string[][] = []
  let open: string[] | undefined
  for (const line of lines(source)) {
    if (line === '// ---- from docs/durable-state.md ----') open = []
    else if (line === '// ---- end ----' && open) {
      found.push(open)
      open = undefined
    } else open?.push(line)
  }
  return found
}

describe("docs/durable-state.md's examples", () => {
  const page = lines(read('docs/durable-state.md'))
  const run = regions(read('test/once-object/docs-examples.ts'))

  it('are the code the tests run', () => {
    expect(run.length).toBe(4)
    for (const region of run) {
      const at = page.findIndex((_, i) => region.every((line, j) => page[i + j] === line))
      expect(at, `not in the page:\n${region.join('\n')}`).toBeGreaterThanOrEqual(0)
    }
  })
})
