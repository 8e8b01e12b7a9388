/**
 * Every origin example of README.md and docs/*.md (a TypeScript block that calls `onceReceiver(`) is run, as the page
 * shows it, against bodies its handler cannot use. docs/origin.md's rule: "A client's malformed body is a final
 * answer (400, recorded), not a throw: a throw is `handler-failed`, which the edge counts towards poison." On an
 * ordered route (the gateway `npx hono-once init` writes), a request every replica refuses for good holds every later
 * write of its domain for about 10 minutes, so an example that throws on `{bad` lets any caller stall an account.
 * (Review s32 gateway M1: the README's quick-start origin did, through `await c.req.json<{ amount: number }>()`.)
 *
 * Each block becomes a module beside this file (so `hono` resolves), with `hono-once/origin` mapped to the sources,
 * its database in memory, no `serve()`, and its one Hono app exported.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { allBlocks, TYPESCRIPT, type CodeBlock } from './blocks.js'
import { signedHeaders } from '../origin/sign.js'

const SECRET = 'origin-examples-secret-0123456789'
const root = resolve(import.meta.dirname, '../..')
const examples = allBlocks(root).filter((b) => TYPESCRIPT.has(b.lang) && !b.flags.includes('nocheck') && /\bonceReceiver\(/.test(b.code))
const written: string[] = []
afterAll(() => written.forEach((file) => rmSync(file, { force: true })))

/** What an origin example may import: it runs on Node, beside no edge code. */
const RUNNABLE = /^(hono(\/.*)?|hono-once\/origin|node:.*|@hono\/node-server)$/

/** The block as a module that exports its app: the names it needs from elsewhere are the reason it could not run. */
function runnable(block: CodeBlock): { source: string; apps: string[] } {
  const where = `${block.file}:${block.line}`
  const code = `${block.context.replace(/\n/g, ' ')}\n${block.code}`
  const imports = [...code.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]!)
  const foreign = imports.filter((i) => !RUNNABLE.test(i))
  if (foreign.length > 0) throw new Error(`${where}: an origin example imports ${foreign.join(', ')}: give the origin a block of its own (\`ts file=…\`) that imports only hono, hono-once/origin and Node`)
  const apps = [...code.matchAll(/\b(?:const|let)\s+(\w+)\s*=\s*new Hono\b/g)].map((m) => m[1]!)
  if (apps.length !== 1) throw new Error(`${where}: expected one Hono app in an origin example, found ${apps.length}`)
  const source = code
    .replace(/'hono-once\/origin'/g, `'${resolve(root, 'src/origin/index.ts')}'`)
    .replace(/new DatabaseSync\('[^']*'\)/g, "new DatabaseSync(':memory:')")
    .replace(/^import \{ serve \} from '@hono\/node-server'$/m, '')
    .replace(/^serve\(.*\)$/m, '')
  return { source: `${source}\nexport const __app = ${apps[0]}\n`, apps }
}

/** The POST routes the block registers, with each `:param` filled in. */
function postPaths(code: string): string[] {
  return [...code.matchAll(/\.post\(\s*'([^']+)'/g)].map((m) => m[1]!.replace(/:(\w+)/g, 'acct-1'))
}

type App = { request: (url: string, init: RequestInit) => Promise<Response> }

let n = 0
async function send(app: App, path: string, body: string): Promise<string> {
  const url = `http://origin.test${path}`
  const id = `r-${++n}`
  // Its own domain at sequence 1: every request is next in line, as the edge sends it.
  const headers = await signedHeaders({ keyid: 'ONCE_SIGNING_SECRET', secret: SECRET }, url, {
    headers: { 'content-type': 'application/json', 'idempotency-key': `"k-${n}"`, 'once-request-id': id, 'once-domain': `d-${n}`, 'once-sequence': '1' },
    body,
  })
  const error = console.error
  console.error = () => {}
  try {
    const res = await app.request(url, { method: 'POST', headers, body })
    return `${res.status} ${res.headers.get('once-applied')} ${(await res.text()).slice(0, 160)}`
  } finally {
    console.error = error
  }
}

/** Bodies a deposit handler cannot use: each must be a final, recorded 4xx (`Once-Applied: ?1`). */
const UNUSABLE = ['{bad', '', 'null', '[]', '{}', '{"amount":"5"}', '{"amount":1.5}', '{"amount":null}', '{"amount":1e400}']

describe('the origin examples of README.md and docs/*.md', () => {
  it('are found (README, origin.md and testing.md each show one)', () => {
    const files = new Set(examples.map((b) => b.file))
    expect([...files]).toEqual(expect.arrayContaining(['README.md', 'docs/origin.md', 'docs/testing.md']))
  })

  describe.each(examples.map((b) => [`${b.file}:${b.line}`, b] as const))('%s', (_, block) => {
    it('answers a usable deposit (2xx, applied), and every unusable body with a final 4xx, never handler-failed', async () => {
      const { source } = runnable(block)
      const file = resolve(import.meta.dirname, `.origin-example-${block.file.replace(/[/.]/g, '_')}-${block.line}.generated.ts`)
      writeFileSync(file, source)
      written.push(file)
      process.env.ONCE_SIGNING_SECRET = SECRET
      const { __app: app } = (await import(file)) as { __app: App }
      const paths = postPaths(block.code)
      expect(paths.length).toBeGreaterThan(0)
      for (const path of paths) {
        expect(await send(app, path, '{"amount":5}')).toMatch(/^2\d\d \?1 /)
        const answers = await Promise.all(UNUSABLE.map(async (body) => `${JSON.stringify(body)} → ${await send(app, path, body)}`))
        expect(answers.filter((a) => !/ → 4\d\d \?1 /.test(a))).toEqual([])
      }
    })
  })
})
