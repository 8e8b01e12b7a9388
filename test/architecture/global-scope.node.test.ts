/**
 * Code a Worker loads may not, in its global scope, generate random values, set timers or do I/O: workerd refuses
 * the whole script at start-up ("Disallowed operation called within global scope"), and every request fails.
 * Unit tests import modules inside a handler, where it is allowed, so only an end-to-end start would show it. This
 * reads every module of src/ and fails on such a call outside a function or class body (a lazy `??=` inside a
 * function is the way).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const DISALLOWED = /^(crypto\.(randomUUID|getRandomValues|subtle\.)|Math\.random$|setTimeout$|setInterval$|fetch$|scheduler\.)/

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []))
}

/** The disallowed calls in `file`'s global scope, as `file:line call`. */
function globalCalls(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
  const found: string[] = []
  const visit = (node: ts.Node): void => {
    // What runs later, not at load: function bodies, class bodies (fields run per instance).
    if (ts.isFunctionLike(node) || ts.isClassLike(node)) return
    if (ts.isCallExpression(node) || ts.isNewExpression(node)) {
      const callee = node.expression.getText(source)
      if (DISALLOWED.test(callee)) found.push(`${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1} ${callee}`)
    }
    ts.forEachChild(node, visit)
  }
  ts.forEachChild(source, visit)
  return found
}

describe("a Worker's global scope", () => {
  it('no module of src/ generates random values, sets a timer or does I/O when it is loaded', () => {
    expect(sources('src').flatMap(globalCalls)).toEqual([])
  })

  it('the check sees such a call in a template at module scope, and not inside a function', () => {
    const probe = (text: string) => {
      const source = ts.createSourceFile('probe.ts', text, ts.ScriptTarget.Latest, true)
      let n = 0
      const visit = (node: ts.Node): void => {
        if (ts.isFunctionLike(node) || ts.isClassLike(node)) return
        if (ts.isCallExpression(node) && DISALLOWED.test(node.expression.getText(source))) n++
        ts.forEachChild(node, visit)
      }
      ts.forEachChild(source, visit)
      return n
    }
    expect(probe('const MARK = `x-${crypto.randomUUID()}`')).toBe(1)
    expect(probe('let m: string | undefined\nconst mark = () => (m ??= `x-${crypto.randomUUID()}`)')).toBe(0)
    expect(probe('class A { id = crypto.randomUUID() }')).toBe(0)
  })
})
