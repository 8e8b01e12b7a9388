import { replayFilter, type StoredReply } from '../shared/reply.js'
import type { OnceCallPolicy } from './once-object-types.js'

/**
 * Reads an app's response into the reply the client gets now (every header)
 * and the reply that is stored for duplicates (the headers the policy lets
 * through; a body over `maxReplyBytes` replaced by a `reply-lost` problem
 * that says the request took effect).
 *
 * @param res - the app's response
 * @param policy - the edge's rules for stored replies
 * @param requestId - the logical request's id, for the `reply-lost` problem
 * @param key - the idempotency key, for the `reply-lost` problem
 * @returns both forms
 * @example
 * const { answer, stored } = await readReply(await app.fetch(req), policy, requestId, key)
 */
export async function readReply(
  res: Response,
  policy: OnceCallPolicy,
  requestId: string,
  key: string,
): Promise<{ answer: StoredReply; stored: StoredReply }> {
  const body = new Uint8Array(await res.arrayBuffer())
  const headers: [string, string][] = []
  const kept: [string, string][] = []
  const allowed = replayFilter(policy.allow && new Set(policy.allow))
  res.headers.forEach((value, name) => {
    if (name === 'set-cookie') return
    headers.push([name, value])
    if (allowed(name)) kept.push([name, value])
  })
  // Set-Cookie is the one header that may not be joined: one pair per cookie.
  for (const cookie of res.headers.getSetCookie()) {
    headers.push(['set-cookie', cookie])
    if (allowed('set-cookie')) kept.push(['set-cookie', cookie])
  }
  const answer: StoredReply = { status: res.status, headers, body }
  if (body.byteLength <= policy.maxReplyBytes) return { answer, stored: { status: res.status, headers: kept, body } }
  const problem = {
    ...policy.lost,
    detail: `The request took effect with status ${res.status}, but its reply (${body.byteLength} bytes) exceeds maxReplyBytes (${policy.maxReplyBytes}) and was not stored. It will not run again.`,
    idempotency_key: key,
    request_id: requestId,
  }
  const lost: StoredReply = {
    status: policy.lost.status,
    headers: [['content-type', 'application/problem+json']],
    body: new TextEncoder().encode(JSON.stringify(problem)),
  }
  return { answer, stored: lost }
}
