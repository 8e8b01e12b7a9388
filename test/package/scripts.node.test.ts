import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { parse as parseToml } from 'smol-toml'
import { afterAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const cli = resolve('bin/hono-once.mjs')

describe('npm run size', () => {
  it('exits 0 and prints a budget verdict for each entry, met or not', async () => {
    const { stdout } = await run(process.execPath, [resolve('node_modules/tsx/dist/cli.mjs'), 'scripts/size.ts'], { timeout: 60_000 })
    expect(stdout).toMatch(/^hono-once\/client: .* target ≤ 8\.0 KB gzipped: (ok|MISSED)$/m)
    expect(stdout).toMatch(/^hono-once: .* target ≤ 70\.0 KB gzipped: (ok|MISSED)$/m)
    expect(stdout).toMatch(/^budget: /m)
  }, 90_000)
})

describe('npx hono-once init (bin/hono-once.mjs)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hono-once-init-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('writes a wrangler.toml whose ONCE_CONFIG is a valid gateway config, and the one-line entry', async () => {
    const { stdout } = await run(process.execPath, [cli, 'init', join(dir, 'My Gateway!')], { timeout: 30_000 })
    expect(stdout).toContain('wrote')
    const toml = parseToml(readFileSync(join(dir, 'My Gateway!', 'wrangler.toml'), 'utf8')) as { name: string; vars: { ONCE_CONFIG: string } }
    expect(toml.name).toBe('my-gateway') // a valid Worker name from the folder's
    const { parseGatewayConfig } = await import('../../src/gateway/config.js')
    expect(parseGatewayConfig(toml.vars.ONCE_CONFIG).origins.map((o) => o.name)).toEqual(['eu', 'us'])
  })

  it('keeps existing files unless --force, and takes --name', async () => {
    const target = join(dir, 'kept')
    await run(process.execPath, [cli, 'init', target], { timeout: 30_000 })
    writeFileSync(join(target, 'src/index.ts'), '// mine\n')
    const kept = await run(process.execPath, [cli, 'init', target, '--name', 'other'], { timeout: 30_000 })
    expect(kept.stdout).toContain('kept')
    expect(readFileSync(join(target, 'src/index.ts'), 'utf8')).toBe('// mine\n')
    await run(process.execPath, [cli, 'init', target, '--name', 'other', '--force'], { timeout: 30_000 })
    expect(readFileSync(join(target, 'src/index.ts'), 'utf8')).toContain("from 'hono-once/gateway'")
    expect(readFileSync(join(target, 'wrangler.toml'), 'utf8')).toContain('name = "other"')
  })

  it('refuses a folder whose wrangler config is wrangler.json(c), which wrangler reads before a toml: writes nothing, names the file, shows what to add', async () => {
    for (const file of ['wrangler.jsonc', 'wrangler.json']) {
      const target = join(dir, `c3-${file}`)
      mkdirSync(join(target, 'src'), { recursive: true })
      writeFileSync(join(target, file), '{ "name": "c3-app", "main": "src/index.ts" }\n')
      const error = (await run(process.execPath, [cli, 'init', target], { timeout: 30_000 }).then(
        () => undefined,
        (e: unknown) => e,
      )) as { code: number; stderr: string } | undefined
      expect(error?.code, file).toBe(1)
      expect(error!.stderr).toContain(`this project's wrangler config is ${file}`)
      const fragment = JSON.parse(error!.stderr.slice(error!.stderr.indexOf('\n{'))) as { durable_objects: unknown; migrations: unknown; vars: { ONCE_CONFIG: string } }
      expect(fragment.durable_objects).toEqual({ bindings: [{ name: 'ONCE', class_name: 'StableArea' }] })
      const { parseGatewayConfig } = await import('../../src/gateway/config.js')
      expect(parseGatewayConfig(fragment.vars.ONCE_CONFIG).routes).toHaveLength(2)
      expect(existsSync(join(target, 'wrangler.toml'))).toBe(false)
      expect(existsSync(join(target, 'src/index.ts'))).toBe(false)
    }
  })

  it('says how the secrets reach wrangler dev (.dev.vars) and a deployed Worker (wrangler secret put), and when a kept entry is not the gateway', async () => {
    const target = join(dir, 'own-entry')
    mkdirSync(join(target, 'src'), { recursive: true })
    writeFileSync(join(target, 'src/index.ts'), 'export default { fetch: () => new Response("hi") }\n')
    const { stdout } = await run(process.execPath, [cli, 'init', target], { timeout: 30_000 })
    expect(stdout).toMatch(/npx wrangler dev, put the secrets in \.dev\.vars/)
    expect(stdout).toContain('wrangler secret put ONCE_SIGNING_SECRET')
    expect(stdout).toContain("the kept src/index.ts does not export the gateway; add: export { default, StableArea } from 'hono-once/gateway'")
  })

  it('an unknown command or option, or a --name that is no Worker name, exits 2 with the usage and writes nothing', async () => {
    for (const args of [['deploy'], ['init', '--nope'], [], ['init', join(dir, 'named'), '--name', 'Bad Name!'], ['init', join(dir, 'named'), '--name', '-dash'], ['init', join(dir, 'named'), '--name', 'x'.repeat(64)]]) {
      const error = (await run(process.execPath, [cli, ...args], { timeout: 30_000 }).then(
        () => undefined,
        (e: unknown) => e,
      )) as { code: number; stdout: string; stderr: string } | undefined
      expect(error?.code, args.join(' ')).toBe(2)
      expect(error!.stdout + error!.stderr).toContain('Usage: npx hono-once init')
    }
    expect(existsSync(join(dir, 'named'))).toBe(false)
  })
})
