import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'

const encoder = new TextEncoder()

/** Below this, a synchronous hash beats Web Crypto's promise round trip; above, native code wins. */
const SYNC_LIMIT = 64 * 1024

/**
 * Hex SHA-256 of a string or bytes. Small inputs (keys, headers, typical
 * JSON bodies) are hashed synchronously with `@noble/hashes`, which saves
 * Web Crypto's asynchronous hop on every request; large ones use
 * `crypto.subtle`.
 *
 * @param data - text (hashed as UTF-8) or bytes
 * @returns 64 lowercase hex digits
 * @example
 * await sha256Hex('abc') // 'ba7816bf…'
 */
export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === 'string' ? encoder.encode(data) : data
  if (bytes.byteLength <= SYNC_LIMIT) return bytesToHex(sha256(bytes))
  return bytesToHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)))
}

/**
 * Hex SHA-256 of bytes, synchronously: for the body digests replicas'
 * answers are compared by, computed where an `await` would split a
 * transaction.
 *
 * @param bytes - the data
 * @returns 64 lowercase hex digits
 * @example
 * digestHex(new Uint8Array()) // 'e3b0c442…'
 */
export function digestHex(bytes: Uint8Array): string {
  return bytesToHex(sha256(bytes))
}
