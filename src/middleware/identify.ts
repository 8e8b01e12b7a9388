import type { Context } from 'hono'
import { readBody } from './body.js'
import type { OnceConfig } from './config.js'
import { lookupKey } from './identity.js'
import { problem } from './problem.js'
import type { Namespace } from './rpc.js'

/** What an ordering domain may be called: it travels in the `Once-Domain` header. */
const DOMAIN = /^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$/

/** What the caller sends that a scope function reads, by function: 400 `scope-missing` names it. */
const SCOPE_SOURCES = new WeakMap<object, string>()

/**
 * Tells {@link identify} what `scope` reads from a request (the `Authorization` header), so that a request it finds
 * without it (the scope is `''`, refused with 400 `scope-missing`) is told what to send. The gateway names its
 * `keys.scope`; a scope function no one described gets a general sentence.
 *
 * @param scope - the scope function
 * @param source - what it reads, after "The request has no": `X-Tenant header`
 * @returns `scope` itself
 * @example
 * once({ scope: scopeReading((c) => c.req.header('X-Tenant') ?? '', 'X-Tenant header') })
 */
export function scopeReading<F extends (c: Context) => string | Promise<string>>(scope: F, source: string): F {
  SCOPE_SOURCES.set(scope, source)
  return scope
}

/** Who is asking for what: the request's identity in the stable area (DESIGN §3 steps 2–3). */
export interface Identity {
  /** The client's idempotency key. */
  key: string
  /** Tenant scope. */
  scope: string
  /** `scope` and `key` combined: the record's primary key. */
  lookup: string
  /** Fingerprint of method, path, body (and chosen headers). */
  fingerprint: string
  /** The request body, read once. */
  body: Uint8Array
  /** The StableArea namespace. */
  ns: Namespace
  /** The ordering domain, when `once({ domain })` names one. */
  domain?: string
  /** The request path, for problems' `instance`. */
  instance: string
}

/**
 * Step 1 of a keyed request: reads the body (at most `maxBodyBytes`, else
 * a 413; left readable for the handler), computes scope and fingerprint, and finds the namespace. A user
 * function that throws, or returns the wrong type, gives a 500
 * `misconfigured` problem naming the option; the handler is not run.
 *
 * @param c - the request context
 * @param config - resolved options
 * @param key - the parsed idempotency key
 * @returns the identity, or the problem to answer with
 * @example
 * const id = await identify(c, config, 'order-17')
 * if (id instanceof Response) return id
 */
export async function identify(c: Context, config: OnceConfig, key: string): Promise<Identity | Response> {
  const instance = c.req.path
  const misconfigured = (detail: string) => problem('misconfigured', { detail, instance })
  const body = await readBody(c, config.maxBodyBytes)

  const call = async <T>(option: string, f: () => T | Promise<T>): Promise<{ ok: true; value: T } | { ok: false; response: Response }> => {
    try {
      return { ok: true, value: await f() }
    } catch (err) {
      console.error(`hono-once: the ${option} option threw`, err)
      return { ok: false, response: misconfigured(`The ${option} option threw (its error is in the Worker's log, not in answers: it may hold secrets).`) }
    }
  }
  const scope = await call('scope', () => config.scope(c))
  if (!scope.ok) return scope.response
  if (typeof scope.value !== 'string') return misconfigured(`The scope option must return a string, not ${typeof scope.value}.`)
  // A scope function that cannot tell who is asking must not put every such caller in one shared scope.
  if (scope.value === '' && config.refuseUnscoped) {
    const source = SCOPE_SOURCES.get(config.scope)
    return problem('scope-missing', {
      detail: source
        ? `The request has no ${source}, which tells its caller apart from others (each caller has keys of its own): send it.`
        : "The request does not say who is asking (the app's scope option found no caller in it), so its key cannot be kept apart from other callers'. Send the credentials the app identifies its callers by.",
      instance,
      idempotencyKey: key,
    })
  }
  const print = await call('fingerprint', () => config.fingerprint(c, body))
  if (!print.ok) return print.response
  if (typeof print.value !== 'string' || print.value === '') return misconfigured('The fingerprint option must return a non-empty string.')
  const ns = await call('namespace', () => config.namespace(c))
  if (!ns.ok) return ns.response
  if (!ns.value || typeof ns.value.idFromName !== 'function') {
    return misconfigured('No StableArea namespace: bind the StableArea class as ONCE in wrangler.toml, or pass the namespace option.')
  }
  let domain: string | undefined
  if (config.domain) {
    const named = await call('domain', () => config.domain!(c))
    if (!named.ok) return named.response
    if (typeof named.value !== 'string') return misconfigured(`The domain option must return a string, not ${typeof named.value}.`)
    if (!DOMAIN.test(named.value)) {
      // The domain usually comes from the request (a path segment): a bad one is the client's mistake.
      return problem('domain-invalid', {
        detail: `The request's ordering domain ${JSON.stringify(named.value.slice(0, 80))} must be 1–255 printable ASCII characters, without space at either end.`,
        instance,
      })
    }
    domain = named.value
  }
  const id: Identity = { key, scope: scope.value, lookup: lookupKey(scope.value, key), fingerprint: print.value, body, ns: ns.value, instance }
  if (domain !== undefined) id.domain = domain
  return id
}
