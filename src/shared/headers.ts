/**
 * Hop-by-hop headers (RFC 9110 §7.6.1, plus the non-standard `keep-alive`
 * and `proxy-connection`): they describe one connection, so they are
 * neither forwarded to origins nor stored for replay.
 *
 * @example
 * if (HOP_BY_HOP.includes(name)) continue
 */
export const HOP_BY_HOP: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]
