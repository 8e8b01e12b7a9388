import { execFile, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { parse as parseToml } from 'smol-toml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startOrigin, type RunningOrigin } from '../../examples/origin/server.js'
import { freePort } from '../../scripts/wrangler-dev.js'
import { extractBlocks } from '../docs/blocks.js'

const run = promisify(execFile)
const root = resolve('.')
const wrangler = join(root, 'node_modules/.bin/wrangler')
const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', npm_config_audit: 'false', npm_config_fund: 'false' }
const versionOf = (name: string) => (JSON.parse(readFileSync(`node_modules/${name}/package.json`, 'utf8')) as { version: string }).version

/** Starts `wrangler dev` in `cwd` on loopback and waits (bounded) until it answers. */
/** The signing secret the scaffolded gateway and its origin share in the test. */
const SCAFFOLD_SECRET = `pack-${crypto.randomUUID()}`

async function wranglerDev(cwd: string, vars: Record<string, string>) {
  const port = await freePort()
  const args = ['dev', '--ip', '127.0.0.1', '--port', String(port), '--show-interactive-dev-session=false']
  for (const [name, value] of Object.entries(vars)) args.push('--var', `${name}:${value}`)
  const child = spawn(wrangler, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()))
  const url = `http://127.0.0.1:${port}`
  const stop = async () => {
    if (child.pid === undefined || child.exitCode !== null) return
    const exited = new Promise((r) => child.once('exit', r))
    process.kill(-child.pid, 'SIGKILL') // the whole group: wrangler and workerd
    await exited
  }
  await until(url, () => (child.exitCode !== null ? `wrangler dev exited:\n${log}` : undefined), 50_000).catch(async (e: unknown) => {
    await stop()
    throw new Error(`${String(e)}\n${log}`)
  })
  return { url, stop, log: () => log }
}

/** Bounded polling until `url` answers anything; `dead` says why to stop early. */
async function until(url: string, dead: () => string | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const why = dead()
    if (why) throw new Error(why)
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`)
    const up = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      async (r) => (await r.body?.cancel(), true),
      () => false,
    )
    if (up) return
    await new Promise((r) => setTimeout(r, 200))
  }
}

describe('the npm package, packed and installed in a scratch folder as a user would', () => {
  const work = mkdtempSync(join(tmpdir(), 'hono-once-pack-'))
  const app = join(work, 'my-gateway')
  let tarball: string

  beforeAll(async () => {
    // `npm pack` runs prepack (the build); the tarball is what `npm publish` would upload.
    const packed = await run('npm', ['pack', '--pack-destination', work, '--json'], { env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 })
    tarball = join(work, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename)
    mkdirSync(app)
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'my-gateway', private: true, type: 'module' }, null, 2))
    // Only the npm registry (and its cache, filled by this repo's install) for the tarball's dependencies.
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `hono@${versionOf('hono')}`, `@hono/node-server@${versionOf('@hono/node-server')}`], { cwd: app, env, timeout: 120_000 })
  }, 240_000)

  afterAll(() => rmSync(work, { recursive: true, force: true }))

  it('ships docs, LICENSE, the CLI and the dev-time testing entry', () => {
    const pkg = join(app, 'node_modules/hono-once')
    const shipped = new Set(readdirSync(pkg))
    for (const name of ['dist', 'docs', 'bin', 'LICENSE', 'README.md', 'package.json']) expect(shipped, name).toContain(name)
    expect(readdirSync(join(pkg, 'docs'))).toContain('gateway.md')
    expect(readdirSync(join(pkg, 'dist'))).toContain('testing.js')
    expect(readFileSync(join(pkg, 'LICENSE'), 'utf8')).toMatch(/^MIT License/)
  })

  it('loads from a CommonJS project too (npm init -y writes "type": "commonjs"): hono-once/client and hono-once/origin through require()', async () => {
    const cjs = join(work, 'cjs-app')
    mkdirSync(join(cjs, 'node_modules'), { recursive: true })
    writeFileSync(join(cjs, 'package.json'), JSON.stringify({ name: 'cjs-app', private: true, type: 'commonjs' }))
    for (const name of ['hono-once', 'hono']) symlinkSync(join(app, 'node_modules', name), join(cjs, 'node_modules', name), 'dir')
    // Node 20.19+ and 22.12+ load an ES module through require() (the package has no top-level await).
    const script = "const { createOnceFetch } = require('hono-once/client'); const { onceReceiver, memoryStore } = require('hono-once/origin'); console.log(typeof createOnceFetch, typeof onceReceiver, typeof memoryStore)"
    const { stdout } = await run(process.execPath, ['-e', script], { cwd: cjs, env, timeout: 30_000 })
    expect(stdout.trim()).toBe('function function function')
  })

  it('`npx hono-once init` scaffolds wrangler.toml (binding, SQLite migration, ONCE_CONFIG, secrets) and src/index.ts', async () => {
    const { stdout } = await run('npx', ['--no-install', 'hono-once', 'init'], { cwd: app, env, timeout: 60_000 })
    expect(stdout).toContain('wrote wrangler.toml')
    const text = readFileSync(join(app, 'wrangler.toml'), 'utf8')
    const toml = parseToml(text) as {
      name: string
      main: string
      durable_objects: { bindings: { name: string; class_name: string }[] }
      migrations: { tag: string; new_sqlite_classes: string[] }[]
      vars: { ONCE_CONFIG: string }
    }
    expect(toml.name).toBe('my-gateway')
    expect(toml.main).toBe('src/index.ts')
    expect(toml.durable_objects.bindings).toEqual([{ name: 'ONCE', class_name: 'StableArea' }])
    expect(toml.migrations[0]!.new_sqlite_classes).toEqual(['StableArea'])
    expect(JSON.parse(toml.vars.ONCE_CONFIG)).toHaveProperty('origins')
    expect(text).toContain('wrangler secret put ONCE_SIGNING_SECRET')
    expect(text).toContain('wrangler secret put ONCE_STATUS_TOKEN')
    expect(readFileSync(join(app, 'src/index.ts'), 'utf8')).toContain("export { default, StableArea } from 'hono-once/gateway'")

    // A second run keeps what is there.
    const again = await run('npx', ['--no-install', 'hono-once', 'init'], { cwd: app, env, timeout: 60_000 })
    expect(again.stdout).toContain('kept wrangler.toml')
  })

  it('`wrangler deploy --dry-run` bundles the gateway from node_modules/hono-once', async () => {
    const outdir = join(work, 'out')
    const { stdout, stderr } = await run(wrangler, ['deploy', '--dry-run', '--outdir', outdir], { cwd: app, env, timeout: 90_000, maxBuffer: 16 * 1024 * 1024 })
    const output = stdout + stderr
    expect(output).toContain('--dry-run: exiting now.')
    expect(output).toMatch(/env\.ONCE \(StableArea\)\s+Durable Object/)
    const bundle = readFileSync(join(outdir, 'index.js'), 'utf8')
    expect(bundle).toMatch(/export\s*\{[^}]*\bStableArea\b/)
    expect(bundle).toContain('ONCE_CONFIG')
    // The testing kit is dev-time only: nothing of it in the edge bundle.
    expect(bundle).not.toContain('cloudflare:test')
    expect(bundle).not.toContain('testOrigin')
  })

  it("hono-once/client's types check in a Node project with no DOM lib and skipLibCheck: false", async () => {
    writeFileSync(
      join(app, 'check.ts'),
      "import { onceFetch, createOnceFetch } from 'hono-once/client'\nconst f = createOnceFetch()\nconst r: Promise<Response> = onceFetch('http://127.0.0.1/', { method: 'POST' })\nvoid f, r\n",
    )
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2022'],
          types: ['node'],
          typeRoots: [join(root, 'node_modules/@types')],
          strict: true,
          skipLibCheck: false,
          noEmit: true,
        },
        files: ['check.ts'],
      }),
    )
    const result = await run(join(root, 'node_modules/.bin/tsc'), ['-p', app], { cwd: app, env, timeout: 60_000 }).catch((e: { stdout: string }) => e)
    expect(result.stdout).toBe('')
  })

  describe('`wrangler dev` of the scaffolded project on loopback, in front of a real origin', () => {
    let origin: RunningOrigin
    let dev: Awaited<ReturnType<typeof wranglerDev>> | undefined

    beforeAll(async () => {
      origin = await startOrigin({ name: 'eu', secrets: { ONCE_SIGNING_SECRET: SCAFFOLD_SECRET } })
      const config = {
        origins: [{ name: 'eu', url: origin.url }],
        routes: [{ path: '/accounts/:id/*', methods: ['POST'], strategy: 'replicate', domain: 'param:id' }, { path: '/accounts/*', methods: ['GET'] }],
      }
      // As a user does for local dev (`wrangler secret put` when deployed): the scaffold names the secret to set.
      writeFileSync(join(app, '.dev.vars'), `ONCE_SIGNING_SECRET=${SCAFFOLD_SECRET}\n`)
      dev = await wranglerDev(app, { ONCE_CONFIG: JSON.stringify(config) })
    }, 60_000)

    afterAll(async () => {
      await dev?.stop()
      await origin?.close()
    })

    it('applies a write once and replays it to the retry', async () => {
      const deposit = () =>
        fetch(`${dev!.url}/accounts/alice/deposits`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': '"pack-1"', authorization: 'Bearer pack-test' }, // the gateway scopes keys by caller
          body: JSON.stringify({ amount: 100 }),
          signal: AbortSignal.timeout(15_000),
        })
      const first = await deposit()
      const firstBody = await first.text()
      expect(first.status, `${firstBody}\n${dev!.log()}`).toBe(201)
      const retry = await deposit()
      expect(retry.status).toBe(201)
      expect(retry.headers.get('idempotent-replayed')).toBe('true')
      expect(await retry.text()).toBe(firstBody)
      const stats = await origin.stats()
      expect(stats.balances).toEqual({ alice: 100 })
      expect(Object.values(stats.byRequestId).map((s) => s.applied)).toEqual([1])
    })
  })

  describe("the README's quick start, its three files copied as a user would (ports made free)", () => {
    const dir = join(work, 'quickstart')
    const secret = 'a-long-shared-secret-for-the-test'
    let originProcess: ReturnType<typeof spawn> | undefined
    let originLog = ''
    let dev: Awaited<ReturnType<typeof wranglerDev>> | undefined

    beforeAll(async () => {
      const blocks = extractBlocks('README.md', readFileSync('README.md', 'utf8'))
      const file = (marker: string) => {
        const found = blocks.filter((b) => b.code.startsWith(marker))
        if (found.length !== 1) throw new Error(`README.md: expected one block starting with ${JSON.stringify(marker)}, found ${found.length}`)
        return found[0]!.code
      }
      const port = String(await freePort())
      mkdirSync(join(dir, 'src'), { recursive: true })
      symlinkSync(join(app, 'node_modules'), join(dir, 'node_modules'))
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'my-bank', private: true, type: 'module' }))
      writeFileSync(join(dir, 'wrangler.toml'), file('# wrangler.toml'))
      writeFileSync(join(dir, 'src/index.ts'), file('// src/index.ts').replaceAll('9001', port))
      writeFileSync(join(dir, 'origin.ts'), file('// origin.ts').replaceAll('9001', port))
      // `ONCE_SIGNING_SECRET=… npx tsx origin.ts`, on this Node (>= 22.16: node:sqlite).
      originProcess = spawn(process.execPath, [join(root, 'node_modules/tsx/dist/cli.mjs'), 'origin.ts'], {
        cwd: dir,
        env: { ...env, ONCE_SIGNING_SECRET: secret },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group: tsx runs origin.ts in a child process, which must stop with it.
        detached: true,
      })
      originProcess.stdout?.on('data', (d: Buffer) => (originLog += d.toString()))
      originProcess.stderr?.on('data', (d: Buffer) => (originLog += d.toString()))
      await until(`http://127.0.0.1:${port}/`, () => (originProcess!.exitCode !== null ? `origin.ts exited:\n${originLog}` : undefined), 30_000)
      dev = await wranglerDev(dir, { ONCE_SIGNING_SECRET: secret })
    }, 90_000)

    afterAll(async () => {
      await dev?.stop()
      if (originProcess && originProcess.exitCode === null) {
        const exited = new Promise((r) => originProcess!.once('exit', r))
        process.kill(-originProcess.pid!, 'SIGKILL') // the whole group: tsx and the node running origin.ts
        await exited
      }
    })

    it('the curl lines: a deposit sent twice is applied once and replayed; the signed read answers the balance', async () => {
      const deposit = () =>
        fetch(`${dev!.url}/accounts/alice/deposits`, {
          method: 'POST',
          headers: { 'idempotency-key': '"dep-1"', 'content-type': 'application/json' },
          body: '{"amount":100}',
          signal: AbortSignal.timeout(15_000),
        })
      const first = await deposit()
      const body = await first.text()
      expect(first.status, `${body}\n${dev!.log()}\n${originLog}`).toBe(201)
      expect(JSON.parse(body)).toEqual({ id: 'alice', balance: 100 })
      const again = await deposit()
      expect(again.headers.get('idempotent-replayed')).toBe('true')
      expect(await again.text()).toBe(body)
      const read = await fetch(`${dev!.url}/accounts/alice`, { signal: AbortSignal.timeout(15_000) })
      const readBody = await read.text()
      expect(read.status, readBody).toBe(200)
      expect(JSON.parse(readBody)).toEqual({ id: 'alice', balance: 100 })
    })
  })

  describe("docs/testing.md's example, in a project of its own: @cloudflare/vitest-plugin with hono-once/testing from the package", () => {
    const dir = join(work, 'testing-kit')

    beforeAll(() => {
      const blocks = extractBlocks('docs/testing.md', readFileSync('docs/testing.md', 'utf8'))
      const block = (test: (code: string) => boolean, what: string) => {
        const found = blocks.filter((b) => test(b.code))
        if (found.length !== 1) throw new Error(`docs/testing.md: expected one block with ${what}, found ${found.length}`)
        return found[0]!.code
      }
      mkdirSync(join(dir, 'src'), { recursive: true })
      mkdirSync(join(dir, 'test'))
      // The package and hono from the tarball's install; vitest and the plugin are this repository's (linked).
      mkdirSync(join(dir, 'node_modules/@cloudflare'), { recursive: true })
      for (const name of ['hono', 'hono-once', '@noble', 'canonicalize', 'structured-headers', 'uuid', 'zod']) symlinkSync(join(app, 'node_modules', name), join(dir, 'node_modules', name))
      for (const name of ['vitest', '@cloudflare/vitest-plugin', '@cloudflare/workers-types']) symlinkSync(join(root, 'node_modules', name), join(dir, 'node_modules', name))
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'my-bank', private: true, type: 'module' }))
      writeFileSync(join(dir, 'vitest.config.ts'), block((c) => c.includes('cloudflareTest('), 'the vitest config'))
      writeFileSync(join(dir, 'wrangler.toml'), block((c) => c.startsWith('name = "my-bank"'), 'the wrangler.toml'))
      writeFileSync(join(dir, 'test/env.d.ts'), block((c) => c.startsWith('// test/env.d.ts'), 'the env types'))
      const example = block((c) => c.includes("it('applies the deposit once across a Worker that died mid-handler'"), 'the example test')
      // The one line the page leaves as a comment (the app is yours), and the count of effects it promises.
      const test = example.replace(/^\/\/ `app` is your Worker's Hono app: (import app from '..\/src\/index')$/m, '$1')
      writeFileSync(
        join(dir, 'test/deposit.test.ts'),
        `${test}\n\nimport { applied } from '../src/index'\nit('applied the deposit once', () => expect(applied.get('alice')).toBe(100))\n`,
      )
      // The page's second test (a request with an execution context is answered before its commit lands), on another account.
      const stored = block((c) => c.includes("it('stores the reply right after answering'"), 'the answer-first test')
      const deposit =
        "const deposit = (key: string) => new Request('http://bank.test/accounts/bob/deposits', { method: 'POST', " +
        "headers: { 'content-type': 'application/json', 'idempotency-key': `\"${key}\"` }, body: JSON.stringify({ amount: 5 }) })"
      writeFileSync(join(dir, 'test/stored.test.ts'), `${stored}\nimport app from '../src/index'\n${deposit}\n`)
      // The user's app: a deposit route behind once(), counting its effects.
      writeFileSync(
        join(dir, 'src/index.ts'),
        [
          "import { Hono } from 'hono'",
          "import { once, StableArea } from 'hono-once'",
          'export const applied = new Map<string, number>()',
          'const app = new Hono()',
          "app.post('/accounts/:id/deposits', once(), async (c) => {",
          '  const { amount } = await c.req.json<{ amount: number }>()',
          "  applied.set(c.req.param('id'), (applied.get(c.req.param('id')) ?? 0) + amount)",
          "  return c.json({ balance: applied.get(c.req.param('id')) }, 201)",
          '})',
          'export { StableArea }',
          'export default app',
        ].join('\n'),
      )
    })

    it('its tests run and pass (the deposit applied once across a simulated crash; the reply stored right after the answer)', async () => {
      const childEnv = { ...Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('VITEST'))), NO_COLOR: '1' }
      const result = await run(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', 'test/deposit.test.ts', 'test/stored.test.ts'], {
        cwd: dir,
        env: childEnv,
        timeout: 180_000,
        maxBuffer: 16 * 1024 * 1024,
      }).catch((e: { stdout: string; stderr: string }) => e)
      const output = (result.stdout + result.stderr).replace(/\x1b\[[0-9;]*m/g, '')
      expect(output, output).toMatch(/Tests\s+\S*3 passed/)
      expect(output).not.toMatch(/failed/)
    }, 200_000)
  })
})
