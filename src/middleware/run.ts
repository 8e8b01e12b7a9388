import type { Context, Next } from 'hono'
import type { Admitted } from './admit.js'
import { CommitPoint } from './commit-point.js'
import type { OnceConfig } from './config.js'
import type { Identity } from './identify.js'
import { setRelayLink } from '../origin-adapter/relay-link.js'
import { AdmissionLink } from './admission-link.js'
import { answerWith, callerHeaders } from './caller-headers.js'

/**
 * Steps 3–5 of a keyed request: runs the handler under the lease, reads its
 * reply and commits it (DESIGN §3.5–6). The lease is renewed from admission
 * until the commit has landed. The handler and the reading of its reply are
 * bounded by `maxRunMs`, past which the handler is presumed dead: its
 * `c.var.once.signal` aborts, the key is freed and the client gets a
 * retryable 504 (or, past the roll-forward point, `reply-lost`). A final
 * commit already on its way is not cut short by it: its lease stays renewed
 * until it lands (Admission.startRenewing).
 *
 * @param c - the request context
 * @param next - the rest of the chain (the handler)
 * @param config - resolved options
 * @param id - the request's identity
 * @param admitted - the admission from the stable area
 * @returns a response to answer with, or undefined when `c.res` holds it
 * @example
 * const admitted = await admit(c, config, id)
 * if (admitted instanceof Response) return admitted
 * return run(c, next, config, id, admitted)
 */
export async function run(c: Context, next: Next, config: OnceConfig, id: Identity, admitted: Admitted): Promise<Response | undefined> {
  const { admission, attempt } = admitted
  const link = new AdmissionLink(admission, id.key, admitted.relayed)
  // What the caller's middleware set, for once()'s own answers; and a response set before the handler ran, which
  // is no answer of the handler's (see timedOut).
  const caller = callerHeaders(c)
  const before = c.finalized ? c.res : undefined
  // A final reply is answered first, then committed (CommitPoint.finish), where nothing is lost by it: the object keeps
  // no request of this one to resend (a handler of the app's own), or the reply is proxy()'s answer to the one it keeps.
  const resent = admission.relay !== undefined || admission.order !== undefined
  const point = new CommitPoint(
    config,
    id,
    admission,
    caller,
    (reply) => config.answerFirst && (!resent || link.isStoredRequestAnswer(reply, config.replayed)),
    (res) => link.appliedNothing(res),
    resent,
  )
  c.set('once', {
    key: id.key,
    scope: id.scope,
    requestId: admission.requestId,
    attempt,
    ...(admission.order ? { domain: admission.order.domain, sequence: admission.order.sequence } : {}),
    replayed: false,
    signal: admission.signal,
    commit: point.commit,
  })

  setRelayLink(c, link)
  admission.startRenewing(config.maxRunMs)
  const work = (async () => {
    try {
      await next()
    } catch (err) {
      // Only what Hono does not handle gets here (a thrown non-Error): nothing final was answered.
      await point.abandon()
      throw err
    }
    await point.finish(c)
    return 'done' as const
  })()
  try {
    if ((await Promise.race([work, admission.expired])) === 'done') return undefined
    work.catch(() => {}) // a hung handler that fails later has nobody left to tell
    console.warn(`hono-once: handler of ${admission.requestId} ran past maxRunMs (${config.maxRunMs} ms); abandoned`)
    admission.abort(new DOMException(`hono-once: the handler ran past maxRunMs (${config.maxRunMs} ms)`, 'TimeoutError'))
    const res = await point.timedOut(c.finalized && c.res !== before ? c.res : undefined)
    if (!c.finalized) return res
    // Hono keeps a response the handler already set over one a middleware returns: this answer replaces it.
    answerWith(c, res, caller)
    return undefined
  } finally {
    // A commit after the answer keeps the lease renewed, and the ordered comparison waiting, until it lands.
    if (!point.committingAfterAnswer) {
      admission.stopRenewing()
      admission.stopWaiting()
    }
  }
}
