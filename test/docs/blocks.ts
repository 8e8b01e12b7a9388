/**
 * The fenced code blocks of the README and docs/*.md, with where each starts, for the docs checker
 * (code-blocks.node.test.ts). A fragment (a handler that uses an `app` shown earlier, a placeholder
 * `createOrder()`) gets what it needs from an HTML comment right above its fence, which renders as nothing:
 * `<!-- check: import { Hono } from 'hono'; declare const app: Hono -->`; it is compiled in front of the
 * block. A block opts out with `nocheck` after its language (```ts nocheck): say in the text why. A block named
 * with `file=` after its language (```ts file=worker.ts) can be imported by the other blocks of its page
 * (`import type { BankApp } from './worker'`).
 *
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/** One fenced block. */
export interface CodeBlock {
  /** e.g. docs/once.md */
  file: string
  /** 1-based line of the block's first code line (the line after the opening fence). */
  line: number
  /** The info string's first word, lower case: ts, toml, json, sh, … ('' when none). */
  lang: string
  /** The rest of the info string (e.g. `nocheck`). */
  flags: string[]
  code: string
  /** TypeScript from a `<!-- check: … -->` comment right above the fence, compiled in front of the block. */
  context: string
  /** 1-based line where that comment starts (the block's own line when there is none). */
  contextLine: number
}

/** The languages the checker compiles or parses, by the names used after the fence. */
export const TYPESCRIPT = new Set(['ts', 'typescript', 'tsx'])
export const TOML = new Set(['toml'])
export const JSON_LANGS = new Set(['json'])

/**
 * The markdown files the checker reads: README.md and every docs/*.md there is at the time it runs.
 *
 * @param root - the repository's root
 * @returns paths relative to root, README first
 */
export function docFiles(root: string): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`)
  return ['README.md', ...docs]
}

/**
 * Extracts the fenced blocks (``` or ~~~, any indent of a list item) of one markdown text.
 *
 * @param file - its path, for messages
 * @param text - the markdown
 * @returns the blocks in order
 * @throws Error naming file and line when a fence is never closed
 */
export function extractBlocks(file: string, text: string): CodeBlock[] {
  const lines = text.split('\n')
  const blocks: CodeBlock[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^`\s]*)\s*(.*)$/.exec(lines[i]!)
    if (!open) continue
    const [, indent = '', fence = '```', lang = '', rest = ''] = open
    const body: string[] = []
    let j = i + 1
    for (; j < lines.length; j++) {
      const line = lines[j]!
      if (line.trimStart().startsWith(fence) && line.trim() === fence.padEnd(line.trim().length, fence[0])) break
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line.trimStart())
    }
    if (j === lines.length) throw new Error(`${file}:${i + 1}: code fence ${fence} is never closed`)
    const { context, contextLine } = contextAbove(lines, i)
    blocks.push({ file, line: i + 2, lang: lang.toLowerCase(), flags: rest.split(/\s+/).filter(Boolean), code: body.join('\n'), context, contextLine: contextLine || i + 2 })
    i = j
  }
  return blocks
}

/** The `<!-- check: … -->` comment ending on the line above `fence` (0-based), if any. */
function contextAbove(lines: string[], fence: number): { context: string; contextLine: number } {
  const end = fence - 1
  if (end < 0 || !lines[end]!.trimEnd().endsWith('-->')) return { context: '', contextLine: 0 }
  for (let start = end; start >= 0 && fence - start <= 40; start--) {
    const at = lines[start]!.indexOf('<!-- check:')
    if (at === -1) continue
    const text = lines.slice(start, end + 1).join('\n')
    return { context: text.slice(text.indexOf('<!-- check:') + '<!-- check:'.length, text.lastIndexOf('-->')).trim(), contextLine: start + 1 }
  }
  return { context: '', contextLine: 0 }
}

/**
 * Every block of README.md and docs/*.md.
 *
 * @param root - the repository's root
 * @returns the blocks, file by file
 */
export function allBlocks(root: string): CodeBlock[] {
  return docFiles(root).flatMap((file) => extractBlocks(file, readFileSync(join(root, file), 'utf8')))
}
