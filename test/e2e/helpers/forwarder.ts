/**
 * A regional "front door" for one origin: a small `node:http` reverse proxy
 * on 127.0.0.1 that forwards everything to a target origin, with faults of
 * its own. Two forwarders to one `startOrigin()` give the gateway two origin
 * URLs (eu, us) over ONE database, which is what the `failover` strategy
 * assumes (two origin processes cannot share a SQLite file in one Node
 * process: the store's synchronous busy wait would deadlock).
 *
 * @module
 */
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** The forwarder's fault switches; each update changes only the fields given. */
export interface ForwarderFaults {
  /** Every request's connection is reset on arrival: nothing is forwarded. */
  down: boolean
  /** Requests are read in full, then held unforwarded until this is turned off; then they go on (late). */
  hang: boolean
  /** The next n requests are forwarded, and the origin's answer is thrown away: the caller's connection is reset. */
  dropAnswers: number
}

/** What a forwarder saw. */
export interface ForwarderStats {
  /** Requests that arrived (control of the forwarder itself is not over HTTP). */
  received: number
  /** Requests passed on to the target. */
  forwarded: number
  /** Requests reset on arrival (`down`). */
  refused: number
  /** Answers thrown away (`dropAnswers`, or the target failed). */
  dropped: number
  /** Requests still being handled here or at the target (hung ones included, even when their caller left). */
  pending: number
}

/** A running forwarder. */
export interface Forwarder {
  name: string
  /** e.g. http://127.0.0.1:40123 */
  url: string
  setFaults(update: Partial<ForwarderFaults>): ForwarderFaults
  stats(): ForwarderStats
  /** Resets open connections and stops listening. */
  close(): Promise<void>
}

/**
 * Starts a forwarder to `target` on an ephemeral loopback port.
 *
 * @param name - for messages
 * @param target - the origin's base URL, e.g. http://127.0.0.1:40000
 * @returns the running forwarder
 * @example
 * const eu = await startForwarder('eu', origin.url)
 * eu.setFaults({ down: true })
 */
export async function startForwarder(name: string, target: string): Promise<Forwarder> {
  const to = new URL(target)
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  const faults: ForwarderFaults = { down: false, hang: false, dropAnswers: 0 }
  const stats: ForwarderStats = { received: 0, forwarded: 0, refused: 0, dropped: 0, pending: 0 }
  let unhang: (() => void) | undefined
  let hung: Promise<void> | undefined
  let closing = false

  const reset = (req: IncomingMessage) => {
    if (!req.socket.destroyed) req.socket.resetAndDestroy()
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    stats.received++
    stats.pending++
    try {
      await pass(req, res)
    } finally {
      stats.pending--
    }
  }

  /** Resolves once the request is done with: refused, or its forwarded copy answered or failed. */
  const pass = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (faults.down || closing) {
      stats.refused++
      return void reset(req)
    }
    const chunks: Buffer[] = []
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer)
    } catch {
      return // the caller went away mid-body
    }
    if (hung) await hung
    if (faults.down || closing) {
      stats.refused++
      return void reset(req)
    }
    const drop = faults.dropAnswers > 0
    if (drop) faults.dropAnswers--
    const headers: Record<string, string | string[] | undefined> = { ...req.headers, host: to.host }
    delete headers.connection
    delete headers['keep-alive']
    stats.forwarded++
    await new Promise<void>((done) => {
      const upstream = httpRequest({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers, agent }, (answer) => {
        answer.once('close', done)
        answer.once('error', () => {
          reset(req)
          done()
        })
        if (drop) {
          // Read the whole answer (the origin has finished), then lose it.
          answer.resume()
          answer.once('end', () => {
            stats.dropped++
            reset(req)
          })
          return
        }
        if (req.socket.destroyed) return void answer.resume() // the caller left: nobody to answer
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders)
        answer.pipe(res)
      })
      upstream.once('error', () => {
        // The origin reset or refused the connection: so does this door.
        stats.dropped++
        if (!res.headersSent) reset(req)
        else res.destroy()
        done()
      })
      // A caller that gives up does not stop the forwarded request: it arrives anyway, like a late packet.
      upstream.end(Buffer.concat(chunks))
    })
  }

  const server = createServer((req, res) => void handle(req, res))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    setFaults(update) {
      if (update.down !== undefined) faults.down = update.down
      if (update.dropAnswers !== undefined) faults.dropAnswers = update.dropAnswers
      if (update.hang !== undefined && update.hang !== faults.hang) {
        faults.hang = update.hang
        if (update.hang) hung = new Promise((resolve) => (unhang = resolve))
        else {
          unhang?.()
          hung = undefined
        }
      }
      return { ...faults }
    },
    stats: () => ({ ...stats }),
    async close() {
      closing = true
      unhang?.()
      hung = undefined
      server.closeAllConnections()
      agent.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
