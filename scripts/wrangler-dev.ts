import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A `wrangler dev` process serving a Worker on loopback. */
export interface DevServer {
  url: string
  process: ChildProcess
  /** Everything wrangler printed, for error messages. */
  output: () => string
  /** Stops it: SIGTERM, or SIGKILL to play a crash. */
  stop: (signal?: NodeJS.Signals) => Promise<void>
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/**
 * Starts `wrangler dev` on 127.0.0.1 and waits (bounded) until it answers.
 *
 * @param options - config file, port, where Durable Object state persists,
 *   `vars`: Worker vars given on the command line (`--var NAME:VALUE`), over the config's, and `secrets`: Worker
 *   secrets, given in a file only this user can read (`--env-file`, removed when the server stops), never on the
 *   command line, where any local user's `ps` would show them
 * @returns the running server
 * @example
 * const dev = await startWranglerDev({ config: 'wrangler.toml' })
 * await fetch(dev.url)
 * await dev.stop()
 */
export async function startWranglerDev(
  options: { config?: string; port?: number; persistTo?: string; timeoutMs?: number; vars?: Record<string, string>; secrets?: Record<string, string> } = {},
): Promise<DevServer> {
  const port = options.port ?? (await freePort())
  const args = ['wrangler', 'dev', '--ip', '127.0.0.1', '--port', String(port), '--config', options.config ?? 'wrangler.toml', '--show-interactive-dev-session=false']
  if (options.persistTo) args.push('--persist-to', options.persistTo)
  for (const [name, value] of Object.entries(options.vars ?? {})) {
    // wrangler splits each on its first ':', so values may hold colons (URLs).
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new TypeError(`startWranglerDev: invalid var name ${JSON.stringify(name)}`)
    args.push('--var', `${name}:${value}`)
  }
  const secretsDir = options.secrets ? mkdtempSync(join(tmpdir(), 'hono-once-secrets-')) : undefined
  if (secretsDir) {
    const lines = Object.entries(options.secrets ?? {}).map(([name, value]) => {
      // Single-quoted .env values are taken literally: no expansion, no escapes.
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || /['\r\n]/.test(value)) throw new TypeError(`startWranglerDev: secret ${JSON.stringify(name)} cannot be written to an .env file`)
      return `${name}='${value}'`
    })
    const file = join(secretsDir, 'secrets.env')
    writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 })
    args.push('--env-file', file)
  }
  const removeSecrets = () => secretsDir && rmSync(secretsDir, { recursive: true, force: true })
  const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' } })
  let log = ''
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => (removeSecrets(), resolve())))
  const url = `http://127.0.0.1:${port}`
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null) return
    try {
      process.kill(-child.pid!, signal) // the whole group: npx, wrangler and workerd
    } catch {
      // already gone
    }
    await exited
  }
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${log}`)
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
      await res.body?.cancel()
      return { url, process: child, output: () => log, stop }
    } catch {
      await new Promise((r) => setTimeout(r, 200))
    }
  }
  await stop('SIGKILL')
  throw new Error(`wrangler dev did not answer on ${url} within the timeout:\n${log}`)
}
