const decoder = new TextDecoder()

/**
 * A request whose body is already in memory (it came in the RPC): `json()`,
 * `text()` and `arrayBuffer()` answer from the bytes without streaming them
 * again, which Hono's `c.req.json()` and validators call.
 *
 * @example
 * const req = new BufferedRequest('https://x/deposits', 'POST', new Headers(), bytes, undefined)
 * await req.json() // from `bytes`, no stream read
 */
export class BufferedRequest extends Request {
  readonly #bytes: Uint8Array

  constructor(url: string, method: string, headers: Headers, bytes: Uint8Array, signal: AbortSignal | undefined) {
    super(url, signal ? { method, headers, body: bytes, signal } : { method, headers, body: bytes })
    this.#bytes = bytes
  }

  override arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.resolve(this.#bytes.slice().buffer)
  }

  override text(): Promise<string> {
    return Promise.resolve(decoder.decode(this.#bytes))
  }

  override json<T>(): Promise<T> {
    return this.text().then((text) => JSON.parse(text) as T)
  }
}
