/**
 * What the npm package holds, read from `npm pack --dry-run` (the file list npm would publish), so the docs a user
 * reads in node_modules/hono-once work there, and every entry point loads in an ES module and a CommonJS project.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join, normalize, resolve } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = resolve('.')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string>> }

/** The paths npm would publish (without building: dist/ is left out of the list when it is not built). */
let packed: Set<string>
beforeAll(async () => {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const { stdout } = await run(npm, ['pack', '--dry-run', '--ignore-scripts', '--json'], { cwd: root, timeout: 60_000 })
  packed = new Set((JSON.parse(stdout) as [{ files: { path: string }[] }])[0].files.map((f) => f.path))
}, 90_000)

describe('the npm package', () => {
  it('every entry point has a condition require() matches, the file import gives (npm init -y writes "type": "commonjs")', () => {
    for (const [path, conditions] of Object.entries(pkg.exports)) {
      // TypeScript resolves "types" for a require too, so only a "default" makes the runtime agree with the checker.
      expect(conditions.default, path).toBe(conditions.import)
      expect(Object.keys(conditions).at(-1), `${path}: "default" must come last`).toBe('default')
    }
  })

  it('every relative link of the README and the docs points at a file the package holds', () => {
    const pages = [...packed].filter((p) => p === 'README.md' || (p.startsWith('docs/') && p.endsWith('.md')))
    expect(pages.length).toBeGreaterThan(10)
    const broken: string[] = []
    for (const page of pages) {
      // Code is no link (`this[method](...args)`): code blocks and spans are blanked, line for line.
      const text = readFileSync(join(root, page), 'utf8')
        .replace(/^```[^\n]*\n[\s\S]*?^```/gm, (block) => block.replace(/[^\n]/g, ' '))
        .replace(/`[^`\n]*`/g, (span) => ' '.repeat(span.length))
      for (const m of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        const target = m[1]!
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // https:, mailto:
        const rel = normalize(join(dirname(page), target)).replace(/\/$/, '')
        const found = packed.has(rel) || [...packed].some((p) => p.startsWith(`${rel}/`))
        if (!found) broken.push(`${page}:${text.slice(0, m.index).split('\n').length} ${target}`)
      }
    }
    expect(broken).toEqual([])
  })

  it('holds no local state or secrets: no .wrangler, .dev.vars, .env, tests or benchmark runs', () => {
    const leaked = [...packed].filter((p) => /(^|\/)(\.wrangler|\.dev\.vars|\.env[^/]*|node_modules|test|\.runs)(\/|$)/.test(p))
    expect(leaked).toEqual([])
    expect(packed.has('wrangler.toml')).toBe(true) // docs/gateway.md's "deploy from this repository"
  })
})
