/**
 * A `wrangler dev` process on a fixed port and persisted state, so a test
 * can kill it with SIGKILL mid-work and bring it back where it was.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startWranglerDev, type DevServer } from '../../../scripts/wrangler-dev.js'

/** A `wrangler dev` that can crash and come back on the same state and port. */
export interface RestartableDev {
  /** e.g. http://127.0.0.1:40123; the same across restarts. */
  readonly url: string
  /** SIGKILL to the whole process group: workerd, the Worker and its Durable Objects die mid-work. */
  kill(): Promise<void>
  /** Starts `wrangler dev` again on the same port, persisted state and vars (kills the running one first). */
  restart(): Promise<void>
  /** Everything the current process printed. */
  output(): string
  /** Kills it and deletes its state. */
  close(): Promise<void>
}

/**
 * Starts `wrangler dev` with `config` and `vars` on a free port and a fresh state directory.
 *
 * @param config - the wrangler config file
 * @param vars - Worker vars (`--var NAME:VALUE`)
 * @param prefix - name prefix of the state directory
 * @param timeoutMs - start-up limit (below the e2e project's hook timeout, so a hang fails with wrangler's output)
 * @example
 * const dev = await startRestartable('wrangler.toml', { ONCE_CONFIG: '{…}' }, 'hono-once-e2e-')
 * await dev.kill()
 * await dev.restart()
 */
export async function startRestartable(config: string, vars: Record<string, string>, prefix: string, timeoutMs = 30_000): Promise<RestartableDev> {
  const persistTo = mkdtempSync(join(tmpdir(), prefix))
  const options = { config, timeoutMs, port: await freePort(), persistTo, vars }
  let dev: DevServer | undefined
  try {
    dev = await startWranglerDev(options)
  } catch (err) {
    rmSync(persistTo, { recursive: true, force: true })
    throw err
  }
  return {
    url: dev.url,
    async kill() {
      await dev?.stop('SIGKILL')
    },
    async restart() {
      await dev?.stop('SIGKILL')
      dev = undefined
      dev = await startWranglerDev(options)
    },
    output: () => dev?.output() ?? '',
    async close() {
      await dev?.stop('SIGKILL')
      dev = undefined
      rmSync(persistTo, { recursive: true, force: true })
    },
  }
}
