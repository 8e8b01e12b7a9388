import { sha256Hex } from '../shared/digest.js'

/**
 * The record's lookup key: scope and idempotency key, length-prefixed so no
 * choice of scope can collide with another scope's keys.
 *
 * @param scope - tenant scope ('' for none)
 * @param key - the client's idempotency key
 * @returns the lookup key the stable area stores
 * @example
 * lookupKey('', 'k1') // '0::k1'
 */
export function lookupKey(scope: string, key: string): string {
  return `${scope.length}:${scope}:${key}`
}

/**
 * Name of the StableArea object that owns `lookup`: `once/<n>`, with `n`
 * the lookup key's SHA-256 modulo `shards`. Changing `shards` moves keys to
 * other objects, so in-flight and stored keys are forgotten: change it only
 * with a new namespace or after a TTL of quiet.
 *
 * @param lookup - from {@link lookupKey}
 * @param shards - how many objects the keys are spread over
 * @returns the name to pass to `idFromName`
 * @example
 * namespace.idFromName(await shardName(lookup, 4))
 */
export async function shardName(lookup: string, shards: number): Promise<string> {
  if (shards === 1) return 'once/0'
  const hex = await sha256Hex(lookup)
  return `once/${Number.parseInt(hex.slice(0, 8), 16) % shards}`
}

/**
 * Default scope: the SHA-256 of the `Authorization` header, so two tenants
 * never share a key; '' for requests without one.
 *
 * @param authorization - the header value, if any
 * @returns the scope
 * @example
 * await defaultScope('Bearer sk_test_1') // 'e3b0…'
 */
export async function defaultScope(authorization: string | undefined): Promise<string> {
  return authorization ? sha256Hex(authorization) : ''
}
