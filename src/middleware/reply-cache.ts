import type { JsonValue, StoredReply } from '../durable/types.js'

/** A committed reply as an isolate keeps it. */
export interface CachedReply {
  fingerprint: string
  requestId: string
  reply: StoredReply
  expiresAt: number
}

/** Bounds of the in-isolate cache of committed replies. */
export interface ReplyCacheOptions {
  /** Most replies kept. Default 1000. */
  maxEntries?: number
  /** Most bytes kept in all (bodies, headers, `onDuplicate` args, keys). Default 8 MiB. */
  maxBytes?: number
}

/**
 * Every reply cache of this isolate, held weakly (a cache goes with the
 * `once()` or `onceObject()` that made it), so `hono-once/testing`'s
 * `expireKey()` can drop a key from all of them: see {@link forgetEverywhere}.
 */
const everyCache = new Set<WeakRef<ReplyCache>>()

/**
 * A small LRU of committed replies. A committed reply never changes until it
 * expires, so a replay found here needs no round trip to the stable area
 * (DESIGN §4). In-flight and new keys are never cached.
 *
 * @example
 * const cache = new ReplyCache({ maxEntries: 100 })
 * cache.set('scope:key', { fingerprint, requestId, reply, expiresAt })
 * cache.get('scope:key', Date.now())
 */
export class ReplyCache {
  /** Entries as kept: `onDuplicate` args as their JSON text (what they weigh), parsed anew on each hit. */
  readonly #entries = new Map<string, { entry: CachedReply; args: string | undefined; size: number }>()
  readonly #maxEntries: number
  readonly #maxBytes: number
  #bytes = 0

  constructor({ maxEntries = 1000, maxBytes = 8 * 1024 * 1024 }: ReplyCacheOptions = {}) {
    this.#maxEntries = maxEntries
    this.#maxBytes = maxBytes
    // The refs of caches already collected go here, so an app that makes a once() per request does not grow the set.
    if (everyCache.size >= 64) for (const ref of everyCache) if (ref.deref() === undefined) everyCache.delete(ref)
    everyCache.add(new WeakRef(this))
  }

  /** The live entry for `lookup`, refreshed as most recently used. */
  get(lookup: string, now: number): CachedReply | undefined {
    const kept = this.#entries.get(lookup)
    if (!kept) return undefined
    this.#delete(lookup, kept.size)
    if (kept.entry.expiresAt <= now) return undefined
    this.#entries.set(lookup, kept)
    this.#bytes += kept.size
    // A fresh copy per hit: what one onDuplicate does to its args never reaches the next.
    return kept.args === undefined ? kept.entry : { ...kept.entry, reply: { ...kept.entry.reply, args: JSON.parse(kept.args) as JsonValue } }
  }

  /** Keeps `entry`, evicting the least recently used ones past the bounds. */
  set(lookup: string, entry: CachedReply): void {
    let args: string | undefined
    if (entry.reply.args !== undefined) {
      args = JSON.stringify(entry.reply.args)
      const { args: _parsed, ...reply } = entry.reply
      entry = { ...entry, reply }
    }
    const size = sizeOf(lookup, entry) + (args?.length ?? 0)
    if (size > this.#maxBytes) return
    const old = this.#entries.get(lookup)
    if (old) this.#delete(lookup, old.size)
    this.#entries.set(lookup, { entry, args, size })
    this.#bytes += size
    for (const [key, value] of this.#entries) {
      if (this.#entries.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) break
      this.#delete(key, value.size)
    }
  }

  get size(): number {
    return this.#entries.size
  }

  /**
   * Drops every entry whose cache key `drop` picks.
   *
   * @param drop - picks by cache key
   * @returns how many were dropped
   */
  forget(drop: (cacheKey: string) => boolean): number {
    let dropped = 0
    for (const [key, value] of this.#entries) if (drop(key)) (this.#delete(key, value.size), dropped++)
    return dropped
  }

  #delete(lookup: string, size: number): void {
    this.#entries.delete(lookup)
    this.#bytes -= size
  }
}

/**
 * What an entry weighs against `maxBytes`, roughly in bytes: its body, its headers and its keys (the
 * `onDuplicate` args are added as the JSON text they are kept as). The body alone would let a reply kept as args
 * (an empty body, up to 1 MiB of JSON) count nothing.
 */
function sizeOf(lookup: string, { reply, fingerprint, requestId }: CachedReply): number {
  let size = reply.body.byteLength + lookup.length + fingerprint.length + requestId.length
  for (const [name, value] of reply.headers) size += name.length + value.length
  return size
}

/**
 * The key a reply is cached under: the lookup key (scope and idempotency
 * key), and on ordered routes the domain too. An ordered key is unique per
 * scope and domain (each domain's object keeps its own records), so a cache
 * keyed by the lookup alone could answer one domain's request with
 * another's reply.
 *
 * @param id - the request's lookup key and ordering domain
 * @returns the cache key
 * @example
 * cache.get(cacheKeyOf(id), Date.now())
 */
export function cacheKeyOf(id: { lookup: string; domain?: string | undefined }): string {
  return id.domain === undefined ? id.lookup : `${id.lookup}\n${id.domain}`
}

/**
 * Drops a key's committed replies from every reply cache of this isolate:
 * `once()`'s (cached under the lookup, or the lookup and the domain) and
 * `onceObject()`'s (the object's id and the lookup). What the stable area
 * holds is not touched; a later duplicate asks it again. For
 * `hono-once/testing`'s `expireKey()`, which moves the record past its TTL,
 * where a real expiry would have ended the cached copy with it. Dropping
 * more than needed only costs a round trip.
 *
 * @param lookup - the key's lookup (`lookupKey(scope, key)`)
 * @returns how many entries were dropped
 * @example
 * forgetEverywhere(lookupKey('', 'dep-1')) // 1
 */
export function forgetEverywhere(lookup: string): number {
  const ofKey = (cacheKey: string) => cacheKey === lookup || cacheKey.startsWith(`${lookup}\n`) || cacheKey.endsWith(`\n${lookup}`)
  let dropped = 0
  for (const ref of everyCache) {
    const cache = ref.deref()
    if (cache === undefined) everyCache.delete(ref)
    else dropped += cache.forget(ofKey)
  }
  return dropped
}
