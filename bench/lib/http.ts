/** One timed HTTP request over a kept-alive loopback connection. */
import { Agent, request as httpRequest } from 'node:http'

/** A request the bench sends. */
export interface BenchRequest {
  method: 'GET' | 'POST'
  path: string
  headers?: Record<string, string | undefined>
  body?: string
  /** The status that counts as success; anything else rejects. */
  expect: number
}

/** A keep-alive agent: one socket for sequential latency runs, more for throughput. */
export function keepAlive(maxSockets = 1): Agent {
  return new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets })
}

/**
 * Sends `req` to `base` and resolves with the milliseconds until the whole
 * answer was read; rejects (with the body) when the status is not `expect`.
 */
export function timed(base: URL, agent: Agent, req: BenchRequest): Promise<number> {
  const headers: Record<string, string | number> = {}
  for (const [k, v] of Object.entries(req.headers ?? {})) if (v !== undefined) headers[k] = v
  if (req.body !== undefined) {
    headers['content-type'] ??= 'application/json'
    headers['content-length'] = Buffer.byteLength(req.body)
  }
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const r = httpRequest({ host: base.hostname, port: base.port, path: req.path, method: req.method, agent, headers }, (res) => {
      if (res.statusCode === req.expect) {
        res.resume()
        res.on('end', () => resolve(Number(process.hrtime.bigint() - started) / 1e6))
        return
      }
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => reject(new HttpError(res.statusCode ?? 0, `${req.method} ${req.path}: ${res.statusCode} ${text.slice(0, 500)}`)))
    })
    r.on('error', reject)
    r.end(req.body)
  })
}

/** A status other than the expected one. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}
