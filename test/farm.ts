import { inject } from 'vitest'
import type { FaultsUpdate } from '../examples/origin/faults.js'

/** What an origin's `GET /__origin/stats` answers (examples/origin/server.ts; that file is Node-only). */
export interface OriginStats {
  name: string
  requests: number
  aborted: number
  byRequestId: Record<string, { received: number; runs: number; applied: number; aborted: number }>
  applied: { domain: string; sequence: number; requestId: string; noop: boolean }[]
  next: Record<string, number>
  balances: Record<string, number>
}

/** A real origin server (Node, onceReceiver, SQLite) started for one test by the origin farm. */
export interface FarmOrigin {
  id: number
  name: string
  url: string
  /** Changes its faults (`POST /__origin/faults`). */
  faults(update: FaultsUpdate): Promise<void>
  /** What it saw and applied. */
  stats(): Promise<OriginStats>
  /** Kills and restarts it on the same port and database file (needs `persist`). */
  restart(): Promise<void>
  /** Stops it for good: connections are refused. */
  stop(): Promise<void>
}

const farm = () => inject('farm')

async function call<T>(path: string, body: unknown = {}): Promise<T> {
  const res = await fetch(`${farm()}${path}`, { method: 'POST', body: JSON.stringify(body) })
  if (!res.ok) throw new Error(`origin farm ${path}: ${res.status} ${await res.text()}`)
  return res.json()
}

/**
 * Starts one bank origin per name, for this test alone.
 *
 * @example
 * const [eu, us] = await startOrigins(['eu', 'us'], { latencyMs: 5 })
 */
export async function startOrigins(names: string[], options: { latencyMs?: number; secrets?: Record<string, string>; persist?: boolean } = {}): Promise<FarmOrigin[]> {
  return Promise.all(
    names.map(async (name) => {
      const { id, url } = await call<{ id: number; url: string }>('/origins', { name, ...options })
      const origin: FarmOrigin = {
        id,
        name,
        url,
        faults: async (update) => {
          const res = await fetch(`${url}/__origin/faults`, { method: 'POST', body: JSON.stringify(update), headers: { 'content-type': 'application/json' } })
          if (!res.ok) throw new Error(`faults: ${res.status} ${await res.text()}`)
          await res.body?.cancel()
        },
        stats: async () => (await fetch(`${url}/__origin/stats`)).json(),
        restart: async () => void (await call(`/origins/${id}/restart`)),
        stop: async () => void (await call(`/origins/${id}/stop`)),
      }
      return origin
    }),
  )
}

/** A raw TCP origin that answers every request in one broken way. */
export async function badOrigin(mode: 'cut-body' | 'short-length' | 'redirect' | 'garbage' | 'bad-headers' | 'huge' | 'hang' | 'gzip-bomb' | 'deflate' | 'deflate-raw' | 'x-custom' | 'gzip' | 'x-gzip' | 'gzip-upper' | 'br' | 'deflate-gzip' | 'bad-deflate'): Promise<string> {
  return (await call<{ url: string }>('/bad', { mode })).url
}

/** Polls (bounded) until `check` passes. */
export async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, tries = 200, everyMs = 25): Promise<T> {
  let last: T | undefined
  for (let i = 0; i < tries; i++) {
    last = await read()
    if (check(last)) return last
    await scheduler.wait(everyMs)
  }
  throw new Error(`condition never held; last value: ${JSON.stringify(last)}`)
}
