import { execFile, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { parse as parseToml } from 'smol-toml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startOrigin, type RunningOrigin } from '../../examples/origin/server.js'
import { freePort } from '../../scripts/wrangler-dev.js'

const run = promisify(execFile)
const root = resolve('.')
const wrangler = join(root, 'node_modules/.bin/wrangler')
const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', npm_config_audit: 'false', npm_config_fund: 'false' }
const honoVersion = (JSON.parse(readFileSync('node_modules/hono/package.json', 'utf8')) as { version: string }).version

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
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `hono@${honoVersion}`], { cwd: app, env, timeout: 120_000 })
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
    let dev: ReturnType<typeof spawn> | undefined
    let log = ''
    let url = ''

    beforeAll(async () => {
      origin = await startOrigin({ name: 'eu' })
      const port = await freePort()
      url = `http://127.0.0.1:${port}`
      const config = {
        origins: [{ name: 'eu', url: origin.url }],
        routes: [{ path: '/accounts/:id/*', methods: ['POST'], strategy: 'replicate', domain: 'param:id' }, { path: '/accounts/*', methods: ['GET'] }],
      }
      dev = spawn(wrangler, ['dev', '--ip', '127.0.0.1', '--port', String(port), '--show-interactive-dev-session=false', '--var', `ONCE_CONFIG:${JSON.stringify(config)}`], {
        cwd: app,
        env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      dev.stdout?.on('data', (d: Buffer) => (log += d.toString()))
      dev.stderr?.on('data', (d: Buffer) => (log += d.toString()))
      const deadline = Date.now() + 50_000
      for (;;) {
        if (dev.exitCode !== null) throw new Error(`wrangler dev exited:\n${log}`)
        if (Date.now() > deadline) throw new Error(`wrangler dev did not answer:\n${log}`)
        const up = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
          async (r) => (await r.body?.cancel(), true),
          () => false,
        )
        if (up) break
        await new Promise((r) => setTimeout(r, 200))
      }
    }, 60_000)

    afterAll(async () => {
      if (dev?.pid !== undefined && dev.exitCode === null) {
        const exited = new Promise((r) => dev!.once('exit', r))
        process.kill(-dev.pid, 'SIGKILL')
        await exited
      }
      await origin?.close()
    })

    it('applies a write once and replays it to the retry', async () => {
      const deposit = () =>
        fetch(`${url}/accounts/alice/deposits`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': '"pack-1"' },
          body: JSON.stringify({ amount: 100 }),
          signal: AbortSignal.timeout(15_000),
        })
      const first = await deposit()
      const firstBody = await first.text()
      expect(first.status, `${firstBody}\n${log}`).toBe(201)
      const retry = await deposit()
      expect(retry.status).toBe(201)
      expect(retry.headers.get('idempotent-replayed')).toBe('true')
      expect(await retry.text()).toBe(firstBody)
      const stats = await origin.stats()
      expect(stats.balances).toEqual({ alice: 100 })
      expect(Object.values(stats.byRequestId).map((s) => s.applied)).toEqual([1])
    })
  })
})
