import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { parseGatewayConfig } from '../../src/gateway/config.js'

const run = promisify(execFile)

describe('wrangler deploy of the root wrangler.toml (the gateway), offline', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'hono-once-deploy-'))
  afterAll(() => rmSync(outdir, { recursive: true, force: true }))

  it('builds the bundle with --dry-run: the gateway, its StableArea, and none of the demo routes', async () => {
    const { stdout, stderr } = await run('npx', ['wrangler', 'deploy', '--dry-run', '--outdir', outdir, '--config', 'wrangler.toml'], {
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' },
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
    })
    const output = stdout + stderr
    expect(output).toContain('--dry-run: exiting now.')
    expect(output).toMatch(/env\.ONCE \(StableArea\)\s+Durable Object/)

    const bundles = readdirSync(outdir).filter((f) => f.endsWith('.js'))
    expect(bundles, output).toEqual(['gateway.js'])
    const bundle = readFileSync(join(outdir, 'gateway.js'), 'utf8')
    expect(bundle).toContain('ONCE_CONFIG')
    expect(bundle).toMatch(/\bStableArea = class extends DurableObject\b/)
    expect(bundle).toMatch(/export\s*\{[^}]*\bStableArea\b/)
    expect(bundle).toContain('/__once/status')
    // The demo's control routes live in examples/demo only, never in the deployed gateway.
    expect(bundle).not.toContain('/__demo/')
    expect(bundle).not.toContain('__origin/faults')
    expect(existsSync(join(outdir, 'gateway.js.map'))).toBe(true)
  })

  it("the root wrangler.toml's example ONCE_CONFIG is a valid gateway config", () => {
    const toml = readFileSync('wrangler.toml', 'utf8')
    expect(toml).toMatch(/^main = "src\/gateway\.ts"$/m)
    const raw = /^ONCE_CONFIG = '''([\s\S]*?)'''/m.exec(toml)?.[1]
    expect(raw).toBeDefined()
    const config = parseGatewayConfig(raw)
    expect(config.origins.map((o) => o.name)).toEqual(['eu', 'us', 'ap'])
    expect(config.routes.length).toBeGreaterThan(0)
  })
})
