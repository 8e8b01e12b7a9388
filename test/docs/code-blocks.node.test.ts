/**
 * Docs that cannot rot: every TypeScript block of README.md and docs/*.md type-checks against the package's
 * types, every TOML and JSON block parses, the README stays a README. It reads whatever docs/ holds when it
 * runs, and each failure names the markdown file and line. A block that cannot stand alone says so with
 * `nocheck` after its language.
 */
import { readFileSync } from 'node:fs'
import { parse as parseToml } from 'smol-toml'
import { describe, expect, it } from 'vitest'
import { allBlocks, extractBlocks, JSON_LANGS, TOML, TYPESCRIPT } from './blocks.js'
import { typecheckBlocks } from './typecheck.js'

const root = process.cwd()
const blocks = allBlocks(root).filter((b) => !b.flags.includes('nocheck'))

describe('the code blocks of README.md and docs/*.md', () => {
  it('finds blocks to check (the checker reads the docs it is meant to)', () => {
    expect(blocks.filter((b) => TYPESCRIPT.has(b.lang)).length).toBeGreaterThan(5)
    expect(blocks.some((b) => b.file === 'README.md' && TYPESCRIPT.has(b.lang))).toBe(true)
  })

  it('every TypeScript block type-checks against the package (hono-once/* → src/)', () => {
    const problems = typecheckBlocks(root, blocks.filter((b) => TYPESCRIPT.has(b.lang)))
    expect(problems.map((p) => p.message).join('\n')).toBe('')
  }, 120_000)

  it('every TOML block parses', () => {
    const problems = blocks
      .filter((b) => TOML.has(b.lang))
      .flatMap((b) => {
        try {
          parseToml(b.code)
          return []
        } catch (error) {
          return [`${b.file}:${b.line}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`]
        }
      })
    expect(problems.join('\n')).toBe('')
  })

  it('every JSON block parses', () => {
    const problems = blocks
      .filter((b) => JSON_LANGS.has(b.lang))
      .flatMap((b) => {
        try {
          JSON.parse(b.code)
          return []
        } catch (error) {
          return [`${b.file}:${b.line}: ${error instanceof Error ? error.message : String(error)}`]
        }
      })
    expect(problems.join('\n')).toBe('')
  })

  it('the README stays short: at most 250 lines', () => {
    expect(readFileSync('README.md', 'utf8').split('\n').length).toBeLessThanOrEqual(250)
  })
})

describe('the docs checker itself', () => {
  const md = ['# t', '', '```ts', "import { once } from 'hono-once'", 'const n: number = once', '```', '', '```toml', 'a = [', '```', '', '```json', '{"a":1,}', '```'].join('\n')
  const sample = extractBlocks('docs/sample.md', md)

  it('names the markdown file and line of a type error', () => {
    const problems = typecheckBlocks(root, sample.filter((b) => b.lang === 'ts'))
    expect(problems.map((p) => p.message)).toEqual([expect.stringMatching(/^docs\/sample\.md:5: TS2322 /)])
  }, 60_000)

  it('finds each block with its language and first line', () => {
    expect(sample.map((b) => [b.lang, b.line])).toEqual([
      ['ts', 4],
      ['toml', 9],
      ['json', 13],
    ])
  })

  it('compiles a fragment with the context of the comment above it, and points into the block', () => {
    const fragment = extractBlocks(
      'docs/fragment.md',
      ['text', "<!-- check: import { Hono } from 'hono'; import { once } from 'hono-once';", 'declare const app: Hono -->', '```ts', "app.post('/x', once(), (c) => c.text('ok'))", 'const s: string = 1', '```'].join('\n'),
    )
    expect(fragment[0]).toMatchObject({ line: 5, contextLine: 2 })
    expect(typecheckBlocks(root, fragment).map((p) => p.message)).toEqual([expect.stringMatching(/^docs\/fragment\.md:6: TS2322 /)])
  }, 60_000)

  it('says which fence is never closed', () => {
    expect(() => extractBlocks('docs/broken.md', 'a\n```ts\nconst x = 1\n')).toThrow('docs/broken.md:2: code fence ``` is never closed')
  })
})
