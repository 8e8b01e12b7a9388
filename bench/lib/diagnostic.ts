/**
 * What the diagnostics (`npm run bench:cpu`, `npm run bench:profile`) share:
 * `wrangler dev` with bench/wrangler.toml on a fresh store, one kept-alive
 * connection, and the variants of sections 1 and 7 as one request each.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startWranglerDev } from '../../scripts/wrangler-dev.js'
import { keepAlive, timed } from './http.js'

/** One request of a variant: `i` its number in the block, `round` the block's (keys stay unique across both); its ms. */
export type DiagnosticVariant = (i: number, round: number) => Promise<number>

/**
 * Starts the bench Worker under `wrangler dev` and returns its variants:
 * plain, floor, once (section 1); rpc, call, obj, replay (section 7).
 *
 * @param label - names the temporary store directory
 * @returns the `wrangler dev` process, the variant of a name, and `stop()`
 * @example
 * const bench = await startDiagnostic('cpu')
 * try { await bench.variant('obj', 'BENCH_VARIANT')(0, 0) } finally { await bench.stop() }
 */
export async function startDiagnostic(label: string) {
  const persistTo = mkdtempSync(join(tmpdir(), `hono-once-${label}-`))
  const dev = await startWranglerDev({ config: 'bench/wrangler.toml', persistTo })
  const base = new URL(dev.url)
  const agent = keepAlive(1)
  const run = Date.now().toString(36)
  const post = (path: string, key?: string) =>
    timed(base, agent, { method: 'POST', path, body: '{"amount":100}', headers: { 'idempotency-key': key === undefined ? undefined : `"${key}"` }, expect: 201 })
  const variants: Record<string, DiagnosticVariant> = {
    plain: () => post('/plain'),
    floor: (i, r) => post('/floor', `f-${run}-${r}-${i}`),
    once: (i, r) => post('/once', `o-${run}-${r}-${i}`),
    rpc: () => post(`/rpc/acct-${run}/deposits`),
    call: (i, r) => post(`/call/acct-${run}/deposits`, `c-${run}-${r}-${i}`),
    obj: (i, r) => post(`/obj/acct-${run}/deposits`, `n-${run}-${r}-${i}`),
    replay: () => post(`/obj/acct-${run}/deposits`, `r-${run}`),
  }
  return {
    dev,
    /** The variant called `name`; throws naming the knob and the choices when there is none. */
    variant(name: string, knob: string): DiagnosticVariant {
      const v = variants[name]
      if (!v) throw new Error(`${knob}: unknown variant ${name} (${Object.keys(variants).join(', ')})`)
      return v
    },
    async stop() {
      agent.destroy()
      await dev.stop()
      rmSync(persistTo, { recursive: true, force: true })
    },
  }
}
