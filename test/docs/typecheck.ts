/**
 * Type-checks TypeScript blocks of the docs against the package's own types: each block is a virtual
 * module (its own scope) in one program, `hono-once` and `hono-once/*` mapped to `src/`, so an example that
 * drifts from the API fails with the markdown file and line.
 *
 * @module
 */
import { join, relative } from 'node:path'
import ts from 'typescript'
import type { CodeBlock } from './blocks.js'

/** Where a block runs, which decides its globals: a Worker (workers-types) or Node (@types/node). */
export type BlockRuntime = 'workers' | 'node'

/** One failure, already pointing into the markdown. */
export interface BlockProblem {
  /** e.g. `docs/once.md:42: TS2304 Cannot find name 'app'.` */
  message: string
}

/** Node-side code: Node imports or `process`. Everything else is checked as Worker code. */
export function runtimeOf(block: CodeBlock): BlockRuntime {
  return /from\s+['"](node:|@hono\/node-server)|\bprocess\.(env|argv|exit)\b/.test(block.code) ? 'node' : 'workers'
}

function optionsFor(root: string, runtime: BlockRuntime): ts.CompilerOptions {
  return {
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.ES2022,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: runtime === 'node' ? ['lib.es2023.d.ts', 'lib.dom.d.ts'] : ['lib.es2023.d.ts'],
    types: runtime === 'node' ? ['node'] : ['@cloudflare/workers-types', '@cloudflare/vitest-plugin/types'],
    strict: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: true,
    noEmit: true,
    allowJs: false,
    resolveJsonModule: true,
    baseUrl: root,
    // What users import, mapped to the sources: `hono-once/gateway` → src/gateway.ts, `hono-once/client` → src/client/index.ts.
    paths: { 'hono-once': ['src/index.ts'], 'hono-once/*': ['src/*', 'src/*/index.ts'] },
  }
}

/**
 * The virtual file name of a block: beside the repository's files, so node_modules resolves as for real code; one
 * folder per page, so a block may import another of its page by the name its fence gives it (```ts file=worker.ts:
 * `import type { BankApp } from './worker'`), as a reader's project would hold them.
 */
function virtualName(root: string, block: CodeBlock): string {
  const named = block.flags.find((flag) => flag.startsWith('file='))?.slice('file='.length)
  return join(root, '.docs-check', block.file.replace(/[/.]/g, '_'), named ?? `L${block.line}.ts`)
}

/**
 * Type-checks blocks; each is compiled as a module of its own.
 *
 * @param root - the repository's root
 * @param blocks - TypeScript blocks
 * @returns one problem per diagnostic, with markdown file and line
 * @example
 * const problems = typecheckBlocks(process.cwd(), allBlocks(process.cwd()).filter((b) => b.lang === 'ts'))
 */
export function typecheckBlocks(root: string, blocks: CodeBlock[]): BlockProblem[] {
  const problems: BlockProblem[] = []
  for (const runtime of ['workers', 'node'] as const) {
    const mine = blocks.filter((b) => runtimeOf(b) === runtime)
    if (mine.length === 0) continue
    const byName = new Map(mine.map((b) => [virtualName(root, b), b]))
    const options = optionsFor(root, runtime)
    const host = ts.createCompilerHost(options)
    const { fileExists, readFile, getSourceFile } = host
    // The context comment's code on the first line (so the block's lines keep their numbers), and
    // `export {}` so every block is a module of its own: two blocks may declare the same names.
    const source = (name: string) => {
      const block = byName.get(name)!
      return `${block.context.replace(/\n/g, ' ')}\n${block.code}\nexport {}\n`
    }
    host.fileExists = (name) => byName.has(name) || fileExists.call(host, name)
    // The pages' folders exist only here: module resolution asks for them before a block's relative import.
    const { directoryExists } = host
    host.directoryExists = (dir) => [...byName.keys()].some((name) => name.startsWith(`${dir}/`)) || (directoryExists?.call(host, dir) ?? ts.sys.directoryExists(dir))
    host.readFile = (name) => (byName.has(name) ? source(name) : readFile.call(host, name))
    host.getSourceFile = (name, version, onError, create) =>
      byName.has(name) ? ts.createSourceFile(name, source(name), version, true, ts.ScriptKind.TS) : getSourceFile.call(host, name, version, onError, create)
    const program = ts.createProgram({ rootNames: [...byName.keys()], options, host })
    const diagnostics = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics(), ...[...byName.keys()].flatMap((name) => program.getSemanticDiagnostics(program.getSourceFile(name)))]
    const syntactic = [...byName.keys()].flatMap((name) => program.getSyntacticDiagnostics(program.getSourceFile(name)))
    for (const d of [...syntactic, ...diagnostics]) {
      const text = ts.flattenDiagnosticMessageText(d.messageText, '\n  ')
      const block = d.file ? byName.get(d.file.fileName) : undefined
      if (!d.file || !block) {
        problems.push({ message: `${d.file ? relative(root, d.file.fileName) : '(options)'}: TS${d.code} ${text} (${runtime} blocks)` })
        continue
      }
      const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0)
      const where = line === 0 ? `${block.contextLine} (its <!-- check: --> comment)` : String(block.line + line - 1)
      problems.push({ message: `${block.file}:${where}: TS${d.code} ${text}` })
    }
  }
  return problems
}
