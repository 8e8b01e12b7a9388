/**
 * The `once()` middleware and its helpers.
 *
 * @example
 * import { once } from 'hono-once/middleware'
 * app.use('/api/*', once())
 * @module
 */
export { once } from './once.js'
export type { OnceOptions, LocationHint } from './options.js'
export { OnceCommitError } from './errors.js'
export type { CommitFailure } from './admission.js'
export type { OnceContext, OnceVariables, CommitOptions } from './types.js'
export { fingerprint, type FingerprintOptions, type FingerprintInput } from './fingerprint.js'
export { parseIdempotencyKey, MAX_KEY_LENGTH, type KeyError } from './key.js'
export { problem, PROBLEM_BASE, type ProblemDetails, type ProblemKind, type ProblemInit } from './problem.js'
export { REPLAYED_HEADER, NEVER_REPLAYED } from '../shared/reply.js'
export type { ReplyCacheOptions } from './reply-cache.js'
export { onceObject, type OnceMethodCall, type OnceMethodName, type OnceObjectOnceOptions, type OnceObjectOptions, type OnceObjectStub } from './once-object.js'
