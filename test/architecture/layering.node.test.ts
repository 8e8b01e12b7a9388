// The import check for DESIGN §2: imports in src/ run one way (gateway → middleware → origin-adapter → durable →
// shared; origin → shared; client → shared), no file cycle, no file over MAX_LINES. TypeScript's own pre-processor
// reads the imports (static, type-only, re-exports and dynamic), so a comment or a string never counts as one.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const MAX_LINES = 400

/** Which parts each part may import (besides itself); a file at the top of src/ may import anything. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  shared: [],
  durable: ['shared'],
  'origin-adapter': ['durable', 'shared'],
  middleware: ['origin-adapter', 'durable', 'shared'],
  gateway: ['middleware', 'origin-adapter', 'durable', 'shared'],
  origin: ['shared'],
  client: ['shared'],
  testing: ['shared'],
}

const sourceFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return /\.tsx?$/.test(name) && !/\.test\.tsx?$/.test(name) && !name.endsWith('.d.ts') ? [path] : []
  })

const resolveImport = (from: string, spec: string): string => {
  const target = resolve(dirname(from), spec).replace(/\.js$/, '.ts')
  if (target.endsWith('.ts')) return target
  try {
    statSync(target + '.ts')
    return target + '.ts'
  } catch {
    return join(target, 'index.ts')
  }
}

/** Every violation in `root`/src, one line each (empty when the layout holds). */
function layeringViolations(root: string): string[] {
  const src = join(root, 'src')
  const files = sourceFiles(src)
  const partOf = (file: string): string => {
    const parts = relative(src, file).split('/')
    return parts.length === 1 ? '(top)' : parts[0]!
  }
  const name = (file: string): string => relative(root, file)
  const out: string[] = []
  const edges = new Map<string, string[]>()
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    const lines = text.split('\n').length
    if (lines > MAX_LINES) out.push(`${name(file)} has ${lines} lines (> ${MAX_LINES})`)
    const deps: string[] = []
    for (const { fileName: spec } of ts.preProcessFile(text, true, true).importedFiles) {
      if (!spec.startsWith('.')) continue
      const target = resolveImport(file, spec)
      deps.push(target)
      const a = partOf(file)
      const b = partOf(target)
      if (a === b || a === '(top)') continue
      if (!(ALLOWED[a] ?? []).includes(b)) out.push(`${name(file)} imports ${name(target)} (${a} → ${b})`)
    }
    edges.set(file, deps)
  }
  // File cycles: Tarjan's strongly connected components.
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const visit = (v: string): void => {
    index.set(v, counter)
    low.set(v, counter)
    counter++
    stack.push(v)
    onStack.add(v)
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) !== index.get(v)) return
    const component: string[] = []
    let w: string
    do {
      w = stack.pop()!
      onStack.delete(w)
      component.push(w)
    } while (w !== v)
    if (component.length > 1) out.push(`import cycle: ${component.map(name).sort().join(' ↔ ')}`)
  }
  for (const file of files) if (!index.has(file)) visit(file)
  return out.sort()
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

describe('src/ layout (DESIGN §2)', () => {
  it('imports run one way, no file cycle, no file over the line limit', () => {
    expect(layeringViolations(root)).toEqual([])
  })

  it('the check sees an upward import, a type-only one, a cycle and a long file', () => {
    const tree = mkdtempSync(join(tmpdir(), 'layering-'))
    const put = (path: string, text: string): void => {
      mkdirSync(dirname(join(tree, path)), { recursive: true })
      writeFileSync(join(tree, path), text)
    }
    put('src/shared/a.ts', "import type { B } from '../durable/b.js'\nexport type A = B\n")
    put('src/durable/b.ts', "export type B = 1\n// import { x } from '../middleware/x.js'\n")
    put('src/durable/c.ts', "export { d } from './d.js'\nexport const c = 1\n")
    put('src/durable/d.ts', "import { c } from './c.js'\nexport const d = c\n")
    put('src/client/e.ts', "export const e = () => import('../origin/f.js')\n")
    put('src/origin/f.ts', 'export const f = 1\n'.repeat(MAX_LINES))
    expect(layeringViolations(tree)).toEqual([
      'import cycle: src/durable/c.ts ↔ src/durable/d.ts',
      'src/client/e.ts imports src/origin/f.ts (client → origin)',
      `src/origin/f.ts has ${MAX_LINES + 1} lines (> ${MAX_LINES})`,
      'src/shared/a.ts imports src/durable/b.ts (shared → durable)',
    ])
  })
})
