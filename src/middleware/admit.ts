import type { Context } from 'hono'
import type { RelayInput, StableAreaApi } from '../durable/types.js'
import type { ForwardRequest } from '../origin-adapter/types.js'
import { forwardRequest, MAX_RELAY_BODY_BYTES, MAX_RELAY_HEADER_BYTES, principalOf, refuseUnsignable, secretProblem } from '../origin-adapter/forward.js'
import { relayPlanOf } from '../origin-adapter/registry.js'
import { Admission } from './admission.js'
import type { OnceConfig } from './config.js'
import { answerDuplicate } from './duplicate.js'
import type { Identity } from './identify.js'
import { shardName } from './identity.js'
import { inFlight, problem } from './problem.js'
import { cacheKeyOf } from './reply-cache.js'
import { callWithRetry, rpcProblem } from './rpc.js'
import { CREDENTIAL_CLASS, listedCredentials } from '../shared/credentials.js'
import { heldRequest } from '../shared/request-body.js'

/**
 * What this isolate answered without a round trip, for a status page: the
 * stable area's own counters cannot see replays served from a reply cache.
 *
 * @example
 * isolateCounts.cacheReplays // 12
 */
export const isolateCounts = { cacheReplays: 0, cacheMismatches: 0 }

/** The request stored with the admit for the route's `proxy()`, and that proxy's origin group (its owner). */
export interface StoredRelay {
  request: ForwardRequest
  owner: object
}

/** A request admitted to run: its hold on the record, and which attempt this is. */
export interface Admitted {
  admission: Admission
  /** 1 on the first run; 2+ when a retry took over after a failure or a crashed Worker. */
  attempt: number
  /** The request stored with the relay, and the proxy() origin group that sends it. */
  relayed?: StoredRelay | undefined
}

/**
 * Step 2 of a keyed request (DESIGN §3.4): one RPC to the StableArea that
 * owns the key, answering `new`, `replay`, `in_flight` or `mismatch`. A
 * committed reply found in this `once()` instance's cache needs no RPC.
 *
 * @param c - the request context
 * @param config - resolved options
 * @param id - the request's identity
 * @param self - the once() middleware running (the route's handler that proxy() must follow for a relay)
 * @returns the admission to run under, or the answer for the client (replay or problem)
 * @example
 * const admitted = await admit(c, config, id, onceMiddleware)
 * if (admitted instanceof Response) return admitted
 */
export async function admit(c: Context, config: OnceConfig, id: Identity, self: object): Promise<Admitted | Response> {
  const { key, lookup, fingerprint, instance } = id
  const mismatch = (requestId: string): Response =>
    problem('key-reused', {
      detail: 'This Idempotency-Key was already used for a different request (method, path or body differ).',
      instance,
      idempotencyKey: key,
      requestId,
    })

  // On ordered routes a key is unique per scope and domain (each domain's object keeps its own records), so the
  // cache is keyed the same way: it never answers one domain's request with another's reply.
  const cached = cacheKeyOf(id)
  const cache = config.cacheFor(id.ns)
  const hit = cache?.get(cached, Date.now())
  if (hit) {
    if (hit.fingerprint !== fingerprint) {
      isolateCounts.cacheMismatches++
      return mismatch(hit.requestId)
    }
    isolateCounts.cacheReplays++
    return answerDuplicate(c, config, id, hit.reply, hit.requestId)
  }

  // An ordered key lives in its domain's object, which gives out the domain's sequence; others are hashed over shards.
  const objectId = id.ns.idFromName(id.domain !== undefined ? `once/domain/${id.domain}` : await shardName(lookup, config.shards))
  const options = config.locationHint ? { locationHint: config.locationHint } : undefined
  // Typed by its RPC surface: the generated stub type is too deep for the checker.
  const connect = (): StableAreaApi => id.ns.get(objectId, options) as unknown as StableAreaApi
  // A route that proxy() handles: the request is stored with the admit, so a dead Worker's relay is resent.
  const route = relayPlanOf(c, self)
  const routePlan = route?.plan
  // The route's reply policy travels with the relay: a reply the alarm commits is kept as this Worker would keep it.
  const plan = routePlan && {
    ...routePlan,
    reply: { maxReplyBytes: config.maxReplyBytes, ...(config.allow ? { replayHeaders: [...config.allow] } : {}) },
  }
  let relay: RelayInput | undefined
  let unusableSecret: Response | undefined
  if (plan) {
    if (id.body.byteLength > MAX_RELAY_BODY_BYTES) {
      return problem('body-too-large', {
        detail: `A relayed request is stored before it is sent; its body may be at most ${MAX_RELAY_BODY_BYTES} bytes.`,
        instance,
        idempotencyKey: key,
      })
    }
    relay = { request: forwardRequest(heldRequest(c), id.body, { allow: plan.forwardHeaders, principal: principalOf(c, id.scope), logged: id.domain !== undefined }), plan, key }
    // The signature lists every header it covers once more (in Signature-Input): counted, so the edge's own stay small.
    const perName = plan.secret !== undefined ? 2 : 1
    const headerBytes = relay.request.headers.reduce((n, [name, value]) => n + perName * (name.length + 3) + value.length + 1, relay.request.path.length)
    if (headerBytes > MAX_RELAY_HEADER_BYTES) {
      return problem('headers-too-large', {
        detail: `A relayed request forwards at most ${MAX_RELAY_HEADER_BYTES} bytes of path and headers (this one ${headerBytes}), so that every origin's server takes it; send large values in the body.`,
        instance,
        idempotencyKey: key,
      })
    }
    const unsignable = plan.secret !== undefined ? refuseUnsignable(relay.request, instance, key) : undefined
    if (unsignable) return unsignable
    // A secret proxy() cannot sign with: the admit stores nothing for a new key (onlyKnown), since an ordered slot is
    // never taken back and "nothing ran" must stay true; a key the object has is answered as usual (a replay needs no
    // secret; proxy() answers a retry of a sent request itself).
    unusableSecret = secretProblem(plan.secret, c.env, instance)
  }
  if (id.domain !== undefined && plan?.strategy !== 'replicate') {
    return problem('misconfigured', {
      detail: "An ordering domain (once({ domain })) needs proxy({ strategy: 'replicate' }) as the handler right after once() on the route (nothing between them): the domain's log, which its replicas apply, holds the request as once() stores it.",
      instance,
    })
  }
  const credentials = id.domain !== undefined ? listedCredentials(plan?.forwardHeaders) : []
  if (credentials.length > 0) {
    // A relay forgets its request when it ends; a domain's log keeps it for replicas that catch up, days maybe.
    return problem('misconfigured', {
      detail: `An ordered route keeps each request in its domain's log for replicas that catch up (for the log's retention), so proxy()'s forwardHeaders may not list a credential there (${credentials.join(', ')}; refused: ${CREDENTIAL_CLASS}): the replicas read the caller from Once-Principal.`,
      instance,
    })
  }
  let admitted
  try {
    admitted = await callWithRetry(connect, (stub) =>
      stub.admit({
        lookup,
        fingerprint,
        leaseMs: config.leaseMs,
        ttlMs: config.ttlMs,
        waitMs: config.waitMs,
        ...(relay ? { relay } : {}),
        ...(id.domain !== undefined ? { domain: id.domain } : {}),
        ...(unusableSecret ? { onlyKnown: true } : {}),
      }),
    )
  } catch (err) {
    console.error('hono-once: admit failed', err)
    return rpcProblem(err, instance, key)
  }

  switch (admitted.kind) {
    case 'mismatch':
      return mismatch(admitted.requestId)
    case 'replay':
      cache?.set(cached, { fingerprint, requestId: admitted.requestId, reply: admitted.reply, expiresAt: admitted.expiresAt })
      return answerDuplicate(c, config, id, admitted.reply, admitted.requestId)
    case 'in_flight':
      return inFlight(instance, key, admitted.requestId)
    case 'unknown':
      // Only an onlyKnown admit answers so: nothing was stored for this key.
      return unusableSecret ?? problem('misconfigured', { detail: 'The stable area answered an admit it was not asked for.', instance })
    case 'new':
      return {
        admission: new Admission(connect, lookup, admitted.token, admitted.requestId, config.leaseMs, admitted.sends, admitted.order),
        attempt: admitted.attempt,
        // A retry of an ordered request sends it as its domain's log holds it (one request per sequence everywhere).
        relayed: relay && route ? { request: admitted.order?.request ?? relay.request, owner: route.owner } : undefined,
      }
  }
}
