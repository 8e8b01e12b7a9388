/**
 * What crosses the one RPC between `onceObject()` at the edge and an
 * {@link OnceObject}: plain structured-clone data, no classes, no functions.
 * Edge and object speak the shapes of one hono-once release: an object
 * bound from another Worker script (`script_name`) runs the same release as
 * the edge that calls it, deployed before it.
 */
import type { StoredReply } from './types.js'

/** Who is asking for what: the edge's identity of a keyed request (key, scope, fingerprint). */
export interface OnceCallIdentity {
  /** The client's idempotency key. */
  key: string
  /** Scope and key combined: the record's primary key within the object. */
  lookup: string
  /** Fingerprint of method, path, body (and chosen headers), as `once()` computes it. */
  fingerprint: string
}

/** How the object keeps and answers records, as the edge's options set it. */
export interface OnceCallPolicy {
  /** How long a record and its reply are kept, ms. */
  ttlMs: number
  /** How long a duplicate of a running lease route waits in the object before `in_flight` (0 = at once). */
  waitMs: number
  /** Longest a lease route's handler may run before its record is released, ms. */
  maxRunMs: number
  /** Largest reply body stored for replay; a larger one is stored as a `reply-lost` problem. */
  maxReplyBytes: number
  /** Lower-case response headers that may be stored, or undefined for the default rule (`replayedByDefault`). */
  allow?: string[] | undefined
}

/** The request the edge forwards, body already read. */
export interface OnceCall {
  method: string
  /** The original URL: the object's app sees the original path and query. */
  url: string
  /** The original request headers, in order. */
  headers: [string, string][]
  /** The body bytes, read once at the edge (empty for none). */
  body: Uint8Array
  /** The identity of a keyed request; absent for one the edge does not gate (a GET, or no key when none is required). */
  identity?: OnceCallIdentity
  policy: OnceCallPolicy
}

/**
 * A method call the edge forwards (onceObject()'s `call` option): the
 * object runs `this[method](...args)` synchronously, with its record, in
 * one `transactionSync()`. No Hono app, no `Request`: the fastest path.
 */
export interface OnceMethodRequest {
  /** The name of a method of the OnceObject subclass (not one of OnceObject's own). */
  method: string
  /** Its arguments, structured-clone data. */
  args: unknown[]
  /** The status of the reply when the method returns a plain value (an `OnceReply` says its own). */
  status: number
  /** The identity of a keyed request; absent for one the edge does not gate. */
  identity?: OnceCallIdentity
  policy: OnceCallPolicy
}

/**
 * The object's answer, exactly one of `once()`'s outcomes (DESIGN §3.4):
 * - `new`: the handler ran; its reply is committed with its effect (`committed`), or, for a non-final status, passed on
 *   with the effect rolled back (`committed: false`);
 * - `replay`: the stored reply of an earlier request with this key;
 * - `mismatch`: the key was used for another request (422);
 * - `in_flight`: a lease route with this key is still running (409);
 * - `timed_out`: a lease route's handler ran past `maxRunMs`; its record was released (504, retryable);
 * - `plain`: an ungated request, run without a record.
 */
export type OnceAnswer =
  | { kind: 'new'; requestId: string; reply: StoredReply; committed: boolean; expiresAt: number }
  | { kind: 'replay'; requestId: string; reply: StoredReply; expiresAt: number }
  | { kind: 'mismatch'; requestId: string }
  | { kind: 'in_flight'; requestId: string }
  | { kind: 'timed_out'; requestId: string }
  | { kind: 'plain'; reply: StoredReply }

/** What {@link OnceObject.onceRecord} tells about one record, for operators and tests. */
export interface OnceRecordInfo {
  state: 'in_flight' | 'committed' | 'released'
  requestId: string
  attempt: number
  expiresAt: number
  status: number | null
}

/** The RPC surface of an {@link OnceObject} that `onceObject()` calls. */
export interface OnceObjectApi {
  once(call: OnceCall): Promise<OnceAnswer>
  onceCall(request: OnceMethodRequest): Promise<OnceAnswer>
}
