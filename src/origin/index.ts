/**
 * hono-once/origin: the origin server's half of hono-once. Hono middleware
 * that verifies the edge's RFC 9421 signature, dedupes by `Once-Request-Id`, applies
 * each ordering domain's requests in sequence order, and records the answer
 * in the same transaction as the handler's writes; with stores for tests
 * (memory), Node (SQLite) and Cloudflare D1. It imports nothing from the edge.
 *
 * @example
 * import { Hono } from 'hono'
 * import { memoryStore, onceReceiver } from 'hono-once/origin'
 *
 * const app = new Hono()
 * app.use('/accounts/*', onceReceiver({ store: memoryStore(), secrets: { ONCE_SIGNING_SECRET: 'shared-with-the-edge' } }))
 * @module
 */
export { onceReceiver } from './receiver.js'
export type { ReceiverOptions } from './options.js'
export { PROBLEM_BASE, type ProblemKind, type ReceiverProblem } from '../shared/problem.js'
export { decide, type ClaimState } from './decide.js'
export { refusedForGood, WritesRefused } from './refused.js'
export { memoryStore, type MemoryTx } from './stores/memory.js'
export { sqliteStore, type SqliteStore, type SqliteDatabaseLike, type SqliteStatementLike, type SqliteValue } from './stores/sqlite.js'
export { d1Store, type D1Tx, type D1DatabaseLike, type D1StatementLike } from './stores/d1.js'
export type {
  AppliedEntry,
  ApplyClaim,
  ApplyOutcome,
  ApplyWork,
  Decision,
  ReceiverContext,
  ReceiverStore,
  ReceiverVariables,
  StoredRecord,
  StoredReply,
} from './types.js'
export { ONCE_HEADERS, parseSequence, parseNoop } from '../shared/wire.js'
export {
  signRequest,
  verifyRequest,
  hmacSha256,
  SIGNATURE_LABEL,
  SIGNATURE_ALG,
  type SigningKey,
  type OutgoingRequest,
  type SignatureFields,
  type SignatureFailure,
  type SignatureVerdict,
  type VerifyRequestOptions,
} from '../shared/signature.js'
export { contentDigest, checkContentDigest, type DigestVerdict } from '../shared/content-digest.js'
export { parsePrincipal, principalHeader, type Principal } from '../shared/principal.js'
