import type { Hono } from 'hono'
import { problem } from '../shared/problem.js'
import { buildGateway, type GatewayBindings } from './app.js'
import { parseGatewayConfig } from './config.js'
import { holdsStatusToken } from './status-token.js'

/** The gateway built for a config string: rebuilt only when the config changes (a new deploy). */
let built: { raw: string; app: Hono<{ Bindings: GatewayBindings }> } | { raw: string; error: string } | undefined

/**
 * The config-driven gateway Worker (DESIGN §2, §8): `wrangler deploy` with
 * the `ONCE_CONFIG` var filled in gives a working exactly-once gateway in
 * front of regional origins, no code to write. The config is read and
 * validated at the first request; a bad one answers every request with a
 * 500 problem (naming the bad field to a caller with the status token) and
 * logs the whole message, never a stack trace.
 *
 * @example
 * // wrangler.toml
 * // main = "node_modules/hono-once/dist/gateway/worker.js"
 * // [vars]
 * // ONCE_CONFIG = '{"origins":[{"name":"eu","url":"https://eu.example.com"}],"routes":[{"path":"/*"}]}'
 */
export const gateway: ExportedHandler<GatewayBindings> = {
  fetch(request, env, ctx) {
    const raw = typeof env.ONCE_CONFIG === 'string' ? env.ONCE_CONFIG : JSON.stringify(env.ONCE_CONFIG ?? '')
    if (!built || built.raw !== raw) {
      try {
        built = { raw, app: buildGateway(parseGatewayConfig(env.ONCE_CONFIG)).app }
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err)
        console.error(`hono-once gateway: ${error}`)
        built = { raw, error }
      }
    }
    if ('error' in built) {
      // The message may quote origin URLs and paths, which only the status token shows: everyone else is told where to look.
      const full = holdsStatusToken(request.headers.get('authorization') ?? undefined, env.ONCE_STATUS_TOKEN)
      const detail = full
        ? `The gateway's configuration is invalid: ${built.error.replace(/^hono-once: /, '')}`
        : "The gateway's configuration is invalid; the Worker's log says why (wrangler tail), as does this answer with the status token (Authorization: Bearer <ONCE_STATUS_TOKEN>)."
      return problem('misconfigured', { detail, instance: new URL(request.url).pathname })
    }
    return built.app.fetch(request, env, ctx)
  },
}
