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
  const { chunks, size, over } = await readHead(reader, max, signal)
  return over ? undefined : joinChunks(chunks, size)
}

/**
 * Reads chunks until the stream ends or more than `max` bytes were read
 * (`over`; the reader is left there, for the caller to stream on or cancel).
 *
 * @param reader - the body's reader
 * @param max - bytes after which reading stops
 * @param signal - stops the read between chunks (it throws the signal's reason)
 * @returns the chunks read, their size, and whether it passed `max`
 * @example
 * const { chunks, over } = await readHead(res.body.getReader(), 8 << 20)
 */
export async function readHead(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  max: number,
  signal?: AbortSignal,
): Promise<{ chunks: Uint8Array[]; size: number; over: boolean }> {
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    signal?.throwIfAborted()
    const { done, value } = await reader.read()
    if (done) return { chunks, size, over: false }
    chunks.push(value)
    size += value.byteLength
    if (size > max) return { chunks, size, over: true }
  }
}

/**
 * `chunks` as one buffer of its own, of `size` bytes: handing it on detaches no chunk the caller keeps.
 *
 * @param chunks - the parts, in order
 * @param size - their total length
 * @returns the bytes
 * @example
 * joinChunks([a, b], a.byteLength + b.byteLength)
 */
export function joinChunks(chunks: readonly Uint8Array[], size: number): Uint8Array<ArrayBuffer> {
  const body = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    body.set(chunk, at)
    at += chunk.byteLength
  }
  return body
}
