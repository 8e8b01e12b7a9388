import type { Context, Handler } from 'hono'
import { v7 as uuidv7 } from 'uuid'
import { relayLinkOf } from './relay-link.js'
import { problem } from '../shared/problem.js'
import { bufferedResponse, nullBodyStatus } from '../shared/reply.js'
import { inBackground } from '../shared/background.js'
import { isFinalStatus } from '../shared/applied.js'
import { ONCE_HEADERS, SAFE_METHODS as SAFE } from '../shared/wire.js'
import { Connections, type EngineInput } from '../shared/attempt.js'
import { callerScopeOf, forwardRequest, MAX_RELAY_BODY_BYTES, missingSecret, principalOf, readForwardBody, refuseUnsignable } from './forward.js'
import { resolveSecret } from '../shared/send.js'
import { OriginHealth } from '../shared/health.js'
import { DEFAULT_DEADLINE_MS, defaultStrategy, type ProxyOptions, validateProxyOptions } from './options.js'
import { markProxy } from './registry.js'
import { failover } from '../shared/failover.js'
import { hedge } from './strategies/hedge.js'
import { replicate } from './strategies/replicate.js'
import type { AttemptRecord, DispatchOutcome, OriginReply, RelayPlan, Strategy } from './types.js'


/** Used before `'auto'` hedging has seen enough answers of the preferred origin. */
const FIRST_HEDGE_AFTER_MS = 100

/** One proxy's options with their defaults, and the health of its origins (isolate memory). */
export interface OriginGroup {
  options: ProxyOptions
  health: OriginHealth
  timeoutMs: number
  deadlineMs: number
  maxAttempts: number
  maxResponseBytes: number
  /** The relay plan for a state-changing request, or undefined when it cannot be resent (no `url` origin). */
  plan: (method: string) => RelayPlan | undefined
}

/**
 * Validates `options` and sets up the origin group they describe.
 *
 * @param options - proxy options
 * @param where - for error messages
 * @returns the group
 * @example
 * const group = originGroup({ origins }, 'proxy()')
 */
export function originGroup(options: ProxyOptions, where: string): OriginGroup {
  validateProxyOptions(options, where)
  const { timeoutMs = 3000, deadlineMs = DEFAULT_DEADLINE_MS, maxAttempts = 3, maxResponseBytes = 8 * 1024 * 1024, logRetentionMs = 86_400_000 } = options
  const urls = options.origins.flatMap((o) => ('url' in o ? [{ name: o.name, url: o.url, ...(o.drain ? { drain: true } : {}) }] : []))
  return {
    options,
    health: new OriginHealth(options.breaker),
    timeoutMs: Math.min(timeoutMs, deadlineMs),
    deadlineMs,
    maxAttempts,
    maxResponseBytes,
    plan: (method) => {
      const m = method.toUpperCase()
      if (SAFE.has(m) || urls.length === 0) return undefined
      return {
        strategy: defaultStrategy(m, options.strategy),
        origins: urls,
        timeoutMs: Math.min(timeoutMs, deadlineMs),
        deadlineMs,
        maxAttempts,
        maxResponseBytes,
        secret: options.secret,
        forwardHeaders: options.forwardHeaders,
        ackQuorum: options.ackQuorum,
        logRetentionMs,
        ...(options.poisonAfterMs === undefined ? {} : { poisonAfterMs: options.poisonAfterMs }),
      }
    },
  }
}

/**
 * A Hono handler that forwards each request to a group of regional origins
 * (DESIGN §5): `hedge` (first good answer wins, losers aborted), `failover`
 * (one at a time, next on 5xx/timeout/network error, same request id) or
 * `replicate`. Behind `once()`, every send of a logical request carries the
 * same `Once-Request-Id`, and the request is stored with the admit so the
 * stable area's alarm resends it if the Worker dies.
 *
 * Every answer carries `Once-Origin` (who served) and `Server-Timing` (one
 * entry per attempt). When no origin answers finally within `deadlineMs`,
 * the client gets a retryable 502 or 504 problem and nothing is committed.
 *
 * @param options - see {@link ProxyOptions}; validated here, a bad one throws naming it
 * @returns the handler
 * @example
 * import { once, proxy } from 'hono-once'
 * const origins = [{ name: 'eu', url: 'https://eu.example.com' }, { name: 'us', url: 'https://us.example.com' }]
 * app.use('/accounts/*', once({ leaseMs: 3000 }))
 * app.post('/accounts/*', proxy({ origins, strategy: 'failover', timeoutMs: 1500, deadlineMs: 6000 }))
 * app.get('/accounts/*', proxy({ origins, strategy: 'hedge', hedgeAfterMs: 100 }))
 */
export const proxy = (options: ProxyOptions): Handler => proxyWith(originGroup(options, 'proxy()'))

/**
 * The `proxy()` handler of an origin group already set up (the gateway
 * builds one per route, and reads its health for the status page).
 *
 * @param group - from {@link originGroup}
 * @param wrap - wraps the handler in one that passes its answer on (it may drop headers, never change the request):
 *   the wrapper is what once() sees as the route's next handler, so it is marked as the proxy() it wraps
 * @returns the handler
 * @example
 * const group = originGroup(options, 'routes.0')
 * app.post('/x/*', once(), proxyWith(group))
 */
export function proxyWith(group: OriginGroup, wrap: (handler: Handler) => Handler = (handler) => handler): Handler {
  const handler = wrap(async function proxy(c) {
    return forward(c, c.req.raw, group, 'proxy()')
  })
  markProxy(handler, group.plan, group)
  return handler
}

const groups = new WeakMap<ProxyOptions, OriginGroup>()

/**
 * Does what {@link proxy} does, inside your own handler: forwards `request`
 * (default: the incoming one) to the origins and returns their answer. Pass
 * the same options object every time: it holds the origins' health. Behind
 * `once()` it sends with the key's `Once-Request-Id` (a second dispatch in
 * the handler with `<id>/2`, …), but nothing is stored for the alarm to
 * resend: a Worker that dies in the handler leaves the key to the client's
 * retry, which runs the handler again (the origins dedupe by the id). The
 * handler's own answer is what `once()` stores.
 *
 * @param c - the request context
 * @param request - what to forward; default `c.req.raw`
 * @param options - see {@link ProxyOptions}; validated on first use
 * @returns the origins' answer, or a 502/504 problem
 * @example
 * const accounts: ProxyOptions = { origins, strategy: 'failover' }
 * app.post('/accounts/:id/deposits', once(), async (c) => {
 *   const res = await dispatch(c, undefined, accounts)
 *   if (res.ok) await audit(c.var.once.requestId)
 *   return res
 * })
 */
export async function dispatch(c: Context, request: Request | undefined, options: ProxyOptions): Promise<Response> {
  let group = groups.get(options)
  if (!group) groups.set(options, (group = originGroup(options, 'dispatch()')))
  return forward(c, request ?? c.req.raw, group, 'dispatch()')
}

/**
 * The origin group `dispatch()` set up for an options object (its health,
 * for a status page), once it has been used.
 *
 * @param options - the options object given to `dispatch()`
 * @returns the group, or undefined before the first dispatch
 * @example
 * originGroupOf(accounts)?.health.report(['eu', 'us'])
 */
export function originGroupOf(options: ProxyOptions): OriginGroup | undefined {
  return groups.get(options)
}

async function forward(c: Context, req: Request, group: OriginGroup, by: 'proxy()' | 'dispatch()'): Promise<Response> {
  const { options, health } = group
  const method = req.method.toUpperCase()
  const strategy: Strategy = defaultStrategy(method, options.strategy)
  const link = relayLinkOf(c)
  const instance = c.req.path
  if (!SAFE.has(method) && !link && strategy !== 'failover') {
    return problem('misconfigured', {
      detail: `A ${method} request may be sent with the '${strategy}' strategy only behind once(): origins apply each logical request once by its Once-Request-Id, which once() provides.`,
      instance,
    })
  }
  // Resolved per request from the env, never stored; a named secret that is not set is refused, never sent unsigned.
  const secret = resolveSecret(options.secret, c.env)
  if (secret && 'missing' in secret) {
    // A key whose earlier attempt was sent, or whose domain's log holds it, is not "nothing ran".
    const earlier = link !== undefined && (link.sends > 0 || (c.get('once')?.attempt ?? 1) > 1)
    const why = link?.order ? "its ordering domain's log holds it, and it is sent from there once the secret is set" : earlier ? 'an earlier attempt of this key may have sent it, and an origin may have applied it' : undefined
    return missingSecret(secret, instance, link && why ? { key: link.key, why } : undefined)
  }
  // Behind once() on a proxy() route the request was read and stored with the admit: this proxy() sends those very bytes.
  const storedRequest = link && req === c.req.raw && link.storedFor(group) ? link.request : undefined
  const stored = storedRequest !== undefined
  let request = storedRequest
  if (!request) {
    // The client's request behind once() was read, and held to once()'s maxBodyBytes, at its admit: its bytes as
    // once() left them (a form read before once() is encoded once, with the Content-Type of that encoding). Any other
    // body (no once() in front: a keyless write, a route without keys; a request the app made) is read here, bounded.
    const raw = req === c.req.raw
    const readByOnce = raw && c.get('once') !== undefined
    const maxBytes = options.maxBodyBytes ?? MAX_RELAY_BODY_BYTES
    const body = SAFE.has(method) || !req.body ? new Uint8Array() : readByOnce ? new Uint8Array(await req.clone().arrayBuffer()) : await readForwardBody(c, req, maxBytes)
    if (body === 'too-large') {
      const res = problem('body-too-large', { detail: `The request body is larger than ${maxBytes} bytes.`, instance })
      // Nothing was sent: behind once(), a 4xx that gives the key back rather than one stored for replay; unless an
      // earlier dispatch of this request went out (it may have been applied: the key is kept).
      if (link?.dispatches === 0) link.passedOn(res)
      return res
    }
    // After the body is read: a keyless write's scope option may read it too (the tenant in the JSON).
    const scope = c.get('once')?.scope ?? (SAFE.has(method) ? undefined : await callerScopeOf(c))
    // The client's request as the reader left it (a form read before, encoded again, carries its new Content-Type).
    request = forwardRequest(raw ? c.req.raw : req, body, { allow: options.forwardHeaders, principal: principalOf(c, scope) })
  }
  // Signed, a header every signature must cover but none can carry would be refused by every origin, every time.
  const unsignable = secret && !stored ? refuseUnsignable(request, instance, link?.key) : undefined
  if (unsignable) return unsignable
  // The request's first dispatch is the logical request (its id is the key's); a further one in the same handler is
  // another request to the origins, so it gets its own id (`<id>/2`, …), which origins dedupe just as well. Only a
  // proxy() right after once() sends a request stored for the alarm (see relayPlanOf): what a handler dispatches is
  // its own business, which the alarm cannot finish for it, so a Worker that dies there leaves the key to the retry.
  const nth = link ? link.nextDispatch() : 1
  if (link?.order && nth === 1 && !stored) {
    // Its log entry, which replicas are fed from, is the request once() stored: another one would split the replicas.
    return problem('misconfigured', {
      detail: "An ordered request is sent by the route's proxy() as once() stored it; dispatch() of another request cannot take its place.",
      instance,
    })
  }
  const requestId = link ? (nth === 1 ? link.requestId : `${link.requestId}/${nth}`) : uuidv7()

  const now = Date.now()
  const input: EngineInput = {
    origins: options.origins,
    request,
    wire: { requestId, key: link?.key },
    health,
    secret,
    timeoutMs: group.timeoutMs,
    deadline: now + group.deadlineMs,
    maxAttempts: group.maxAttempts,
    maxResponseBytes: group.maxResponseBytes,
    firstAttempt: nth === 1 ? (link?.sends ?? 0) + 1 : 1,
    hedgeAfterMs: strategy === 'failover' ? undefined : hedgeDelay(group),
    signal: c.get('once')?.signal,
    // Signed, every origin runs onceReceiver(), which marks each answer to a write: one without the mark is not its.
    receiverOnly: secret !== undefined && !SAFE.has(method),
    // Hedges run side by side: past the invocation's 6 connections a queued one would spend its timeout waiting.
    connections: new Connections(),
  }
  let outcome: DispatchOutcome
  if (strategy === 'replicate' && !SAFE.has(method)) {
    const order = link?.order
    if (!order || nth > 1) {
      return problem('misconfigured', {
        detail: "The 'replicate' strategy applies requests in one order per domain: put once({ domain }) in front of this proxy().",
        instance,
      })
    }
    // Not the handler's signal: the replicas the client does not wait for go on after the answer, to the deadline.
    const result = await replicate({ ...input, signal: undefined, slot: order.slot, quorum: options.ackQuorum ?? 1, entries: (from, to) => order.entries(from, to) })
    // The client's answer first: stored with the commit, and its slot's reference should the commit not land. No
    // answer, no reference (a tie is not broken by whichever answer came first).
    if (result.outcome.kind === 'answer') order.quorum(result.acks, [])
    // The replicas the client did not wait for finish in the background; their answers are compared in the object.
    const background = result.rest.then(async ({ acks, failed, conflicts, filled }) => {
      // After the commit: it stores the quorum's answers, which the later ones are compared with.
      const events = [...(await order.committed), ...(await order.acknowledge(acks, [...failed, ...conflicts], filled))]
      for (const event of events) {
        console.warn(`hono-once: replica ${event.origin} diverged at ${event.domain}#${event.sequence}`)
        // Each event on its own: a callback that fails (its alerting service down) does not hide the others.
        try {
          await options.onDivergence?.(event)
        } catch (err) {
          console.error(`hono-once: onDivergence threw on ${event.origin} at ${event.domain}#${event.sequence}`, err)
        }
      }
    })
    inBackground(c, background.catch((err: unknown) => console.error('hono-once: background replication failed', err)))
    outcome = result.outcome
  } else {
    outcome = strategy === 'hedge' || strategy === 'replicate' ? await hedge(input) : await failover(input)
  }
  if (nth === 1) link?.sent(outcome.attempts.length)
  const res = answer(outcome, instance, link?.key)
  // The request's place in its domain's order, on the answer (DESIGN §3.7).
  if (link?.order && strategy === 'replicate') res.headers.set(ONCE_HEADERS.sequence, String(link.order.slot.sequence))
  // proxy()'s answer to the stored request: the origins keep it under the request id, so once() may answer before its commit.
  // Only an applied answer: the origins keep it under the request id, so once() may answer before its commit. One
  // passed on though no origin applied the request (a refusal, an answer that never reached a receiver) is not kept
  // anywhere, and gives the key back.
  if (link && nth === 1 && stored && outcome.kind === 'answer') link.answered(res)
  if (link && nth === 1 && outcome.kind === 'failed' && outcome.refusal) link.passedOn(res)
  // proxy()'s applied answer is final whatever its status (a `reply-lost`, an origin's recorded 5xx): once() commits
  // it, where its own rule would give the key back for a retry that the origins would only replay. Not a dispatch()'s:
  // the route's answer is the handler's, which once() stores by its rule.
  const once = c.get('once')
  if (outcome.kind === 'answer' && nth === 1 && by === 'proxy()' && link && once && !isFinalStatus(outcome.reply.status)) {
    await once.commit(res.clone()).catch((err: unknown) => console.error(`hono-once: could not commit the applied answer of ${link.requestId}`, err))
  }
  return res
}

function hedgeDelay(group: OriginGroup): number {
  const configured = group.options.hedgeAfterMs ?? 'auto'
  if (configured !== 'auto') return configured
  const preferred = group.options.origins[0]!.name
  return group.health.latencyOf(preferred).percentile(95) ?? Math.min(FIRST_HEDGE_AFTER_MS, group.timeoutMs)
}

/**
 * The client's answer: the winning origin's reply with `Once-Origin` and
 * `Server-Timing`; an origin's refusal for good as it gave it (its problem
 * says `retryable: false`); or a retryable problem.
 */
function answer(outcome: DispatchOutcome, instance: string, key: string | undefined): Response {
  const timing = serverTiming(outcome.attempts)
  if (outcome.kind === 'failed' && outcome.refusal) return originAnswer(outcome.refusal.origin, outcome.refusal.reply, timing)
  if (outcome.kind === 'failed') {
    const res = problem(outcome.status === 504 ? 'origin-timeout' : 'origin-failed', {
      detail: outcome.detail,
      instance,
      ...(key === undefined ? {} : { idempotencyKey: key }),
      // When the origins asked to wait (Retry-After), that long; else a second.
      headers: { 'retry-after': String(Math.max(1, Math.ceil((outcome.retryAfterMs ?? 0) / 1000))) },
    })
    if (timing) res.headers.set('server-timing', timing)
    return res
  }
  return originAnswer(outcome.origin, outcome.reply, timing)
}

/** An origin's reply as the client gets it: without `Once-Applied`, with `Once-Origin` and `Server-Timing`. */
function originAnswer(origin: string, reply: OriginReply, timing: string | undefined): Response {
  const headers = new Headers()
  // `Once-Applied` is the origin's word to the edge, not part of the answer the client gets (or a replay repeats).
  for (const [name, value] of reply.headers) if (name !== 'once-applied') headers.append(name, value)
  headers.set(ONCE_HEADERS.origin, origin)
  if (timing) headers.append('server-timing', timing)
  // Its bytes are in memory: once() stores them from there instead of reading the body again.
  return bufferedResponse(nullBodyStatus(reply.status) ? null : (reply.body as Uint8Array<ArrayBuffer>), { status: reply.status, headers })
}

/**
 * `Server-Timing` with one entry per attempt: `eu;desc="#1 503";dur=12.4`.
 *
 * @param attempts - the attempt log
 * @returns the header value
 * @example
 * serverTiming([{ origin: 'eu', attempt: 1, outcome: 201, ms: 12.4 }]) // 'eu;desc="#1 201";dur=12.4'
 */
export function serverTiming(attempts: AttemptRecord[]): string {
  return [...attempts]
    .sort((a, b) => a.attempt - b.attempt)
    .map((a) => `${a.origin};desc="#${a.attempt} ${a.outcome}";dur=${a.ms}`)
    .join(', ')
}
