import type { Context } from 'hono'
import type { StoredReply } from '../durable/types.js'
import type { OnceConfig } from './config.js'
import type { Identity } from './identify.js'
import { problem } from './problem.js'
import { REPLAYED_HEADER, replayResponse } from '../shared/reply.js'

/** A signal that never aborts, for replays (nothing runs that could be cancelled). */
const NEVER = new AbortController().signal

/**
 * Answers a duplicate from a committed reply: the stored bytes, or, when
 * the original stored arguments instead, the reply the `onDuplicate`
 * option rebuilds from them (seed 003's redundant-message handler).
 *
 * @param c - the duplicate's context
 * @param config - resolved options
 * @param id - the duplicate's identity
 * @param reply - the committed reply
 * @param requestId - id of the logical request it duplicates
 * @returns the answer, marked `Idempotent-Replayed: true`
 * @example
 * return answerDuplicate(c, config, id, admitted.reply, admitted.requestId)
 */
export async function answerDuplicate(c: Context, config: OnceConfig, id: Identity, reply: StoredReply, requestId: string): Promise<Response> {
  if (reply.args === undefined) return replayResponse(reply)
  if (!config.onDuplicate) {
    return problem('misconfigured', {
      detail: 'This key stored duplicate-handler arguments, but once() has no onDuplicate option.',
      instance: id.instance,
      idempotencyKey: id.key,
    })
  }
  c.set('once', {
    key: id.key,
    scope: id.scope,
    requestId,
    attempt: 0,
    replayed: true,
    signal: NEVER,
    commit: () => Promise.reject(new Error('hono-once: a replay cannot commit')),
  })
  const res = await config.onDuplicate(reply.args, c)
  const out = new Response(res.body, res)
  out.headers.set(REPLAYED_HEADER, 'true')
  return out
}
