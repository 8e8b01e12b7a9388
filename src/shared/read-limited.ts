/**
 * Reads a body stream whole, up to `max` bytes: the bytes, or undefined as
 * soon as it passes the limit (the reader is left to the caller, which
 * drains or cancels it as its side of the wire needs). The bytes are a
 * buffer of their own, so handing them on (a new `Request`) detaches no chunk the caller keeps.
 *
 * @param reader - the body's reader
 * @param max - the largest body accepted, in bytes
 * @param signal - stops the read between chunks (it throws the signal's reason)
 * @returns the body, or undefined when it is larger than `max`
 * @example
 * const body = await readUpTo(res.body.getReader(), 1 << 20)
 * if (!body) return 'too-large'
 */
export async function readUpTo(reader: ReadableStreamDefaultReader<Uint8Array>, max: number, signal?: AbortSignal): Promise<Uint8Array<ArrayBuffer> | undefined> {
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    signal?.throwIfAborted()
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > max) return undefined
    chunks.push(value)
  }
  const body = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    body.set(chunk, at)
    at += chunk.byteLength
  }
  return body
}
