const encoder = new TextEncoder()

/**
 * Hex SHA-256 of a string or bytes, with Web Crypto (available in Workers,
 * browsers and Node).
 *
 * @param data - text (hashed as UTF-8) or bytes
 * @returns 64 lowercase hex digits
 * @example
 * await sha256Hex('abc') // 'ba7816bf…'
 */
export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === 'string' ? encoder.encode(data) : data
  const digest = await crypto.subtle.digest('SHA-256', bytes)
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
}
