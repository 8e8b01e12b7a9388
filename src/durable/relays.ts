import type { ForwardRequest } from '../shared/types.js'
import type { RelayInput, RelayPlan } from './types.js'

/**
 * The relay table (DESIGN §4; seed 003, Figs. 14–18): for each key whose
 * request the Worker forwards to origins, the request itself (method, path,
 * headers, body), the plan to reach the origins, and its flag
 * `processing` / `completed` / `released`. The flag turns `completed` in
 * the transaction that commits the reply. A `processing` relay whose lease
 * ran out (its Worker died) is resent by the alarm with the same request id.
 *
 * @example
 * const relays = new Relays(ctx.storage.sql)
 * relays.start(lookup, requestId, relay, ttlMs, Date.now())
 */
export class Relays {
  constructor(private readonly sql: SqlStorage) {}

  /**
   * Records (or takes over) the relay of an admitted key, keeping the sends
   * an earlier attempt made. Call inside the admit's transaction.
   *
   * @returns sends made so far
   */
  start(lookup: string, requestId: string, relay: RelayInput, ttlMs: number, now: number): number {
    const { request, plan, key } = relay
    return this.sql
      .exec<{ sends: number }>(
        `INSERT INTO relays (lookup, request_id, state, plan, method, path, headers, body, key, ttl_ms, sends, resends, next_at, created_at)
         VALUES (?, ?, 'processing', ?, ?, ?, ?, ?, ?, ?, 0, 0, NULL, ?)
         ON CONFLICT (lookup) DO UPDATE SET request_id = excluded.request_id, state = 'processing', plan = excluded.plan,
           method = excluded.method, path = excluded.path, headers = excluded.headers, body = excluded.body,
           key = excluded.key, ttl_ms = excluded.ttl_ms, next_at = NULL
         RETURNING sends`,
        lookup,
        requestId,
        JSON.stringify(plan),
        request.method,
        request.path,
        JSON.stringify(request.headers),
        request.body,
        key,
        ttlMs,
        now,
      )
      .one().sends
  }

  /**
   * The sends of the key's relay while it is still `processing` (an earlier attempt's, which the alarm would
   * resend), or undefined when it has none.
   */
  pending(lookup: string): number | undefined {
    return this.sql.exec<{ sends: number }>("SELECT sends FROM relays WHERE lookup = ? AND state = 'processing'", lookup).toArray()[0]?.sends
  }

  /**
   * Marks the relay completed (its reply is committed) and drops its stored request, in the same write (the
   * trigger {@link RELAY_REQUEST_TRIGGER} then has nothing left to clear).
   */
  complete(lookup: string, sends: number): void {
    this.sql.exec(`UPDATE relays SET state = 'completed', sends = max(sends, ?), headers = '[]', body = NULL, path = ${PATH_ONLY} WHERE lookup = ?`, sends, lookup)
  }

  /**
   * The Worker gave the key back (every origin failed): the client's retry takes it over, bringing its request
   * again; the alarm leaves it. Its stored request goes in the same write.
   */
  release(lookup: string, sends: number | undefined): void {
    this.sql.exec(`UPDATE relays SET state = 'released', sends = max(sends, ?), headers = '[]', body = NULL, path = ${PATH_ONLY} WHERE lookup = ?`, sends ?? 0, lookup)
  }

  /** Relays left `processing` by a Worker whose lease ran out, due for a resend now. */
  due(now: number, limit: number): DueRelay[] {
    return this.sql
      .exec<DueRow>(
        `SELECT r.lookup, r.request_id, r.plan, r.method, r.path, r.headers, r.body, r.key, r.ttl_ms, r.sends, r.resends, rec.token
         FROM relays r JOIN records rec ON rec.lookup = r.lookup
         WHERE r.state = 'processing' AND rec.state = 'in_flight' AND rec.lease_until <= ?1 AND coalesce(r.next_at, 0) <= ?1
         ORDER BY rec.lease_until LIMIT ?2`,
        now,
        limit,
      )
      .toArray()
      .map((row) => ({
        lookup: row.lookup,
        requestId: row.request_id,
        token: row.token,
        plan: JSON.parse(row.plan) as RelayPlan,
        request: {
          method: row.method,
          path: row.path,
          headers: JSON.parse(row.headers) as [string, string][],
          body: new Uint8Array(row.body ?? new ArrayBuffer(0)),
        },
        key: row.key,
        ttlMs: row.ttl_ms,
        sends: row.sends,
        resends: row.resends,
      }))
  }

  /** A resend by the alarm failed: try again at `nextAt`, counting the sends made. */
  defer(lookup: string, sends: number, nextAt: number): void {
    this.sql.exec(`UPDATE relays SET sends = max(sends, ?), resends = resends + 1, next_at = ? WHERE lookup = ?`, sends, nextAt, lookup)
  }

  /** When the alarm next has relay work: the earliest lease end or retry time of a processing relay. */
  nextWake(): number | null {
    return this.sql
      .exec<{ at: number | null }>(
        `SELECT min(max(coalesce(rec.lease_until, 0), coalesce(r.next_at, 0))) AS at
         FROM relays r JOIN records rec ON rec.lookup = r.lookup
         WHERE r.state = 'processing' AND rec.state = 'in_flight'`,
      )
      .one().at
  }

}

/** A relay the alarm should resend. */
export interface DueRelay {
  lookup: string
  requestId: string
  /** The lease token of the Worker that died (the takeover is guarded on it). */
  token: string | null
  plan: RelayPlan
  request: ForwardRequest
  key: string
  ttlMs: number
  sends: number
  resends: number
}

interface DueRow extends Record<string, SqlStorageValue> {
  lookup: string
  request_id: string
  plan: string
  method: string
  path: string
  headers: string
  body: ArrayBuffer | null
  key: string
  ttl_ms: number
  sends: number
  resends: number
  token: string | null
}

/**
 * Schema step that adds the relay table.
 *
 * @example
 * MIGRATIONS.push(RELAYS_SCHEMA)
 */
export const RELAYS_SCHEMA = `CREATE TABLE IF NOT EXISTS relays (
     lookup     TEXT PRIMARY KEY,
     request_id TEXT NOT NULL,
     state      TEXT NOT NULL CHECK (state IN ('processing', 'completed', 'released')),
     plan       TEXT NOT NULL,
     method     TEXT NOT NULL,
     path       TEXT NOT NULL,
     headers    TEXT NOT NULL,
     body       BLOB,
     key        TEXT NOT NULL,
     ttl_ms     INTEGER NOT NULL,
     sends      INTEGER NOT NULL DEFAULT 0,
     resends    INTEGER NOT NULL DEFAULT 0,
     next_at    INTEGER,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX IF NOT EXISTS relays_processing ON relays (state) WHERE state = 'processing';`

/** SQL: a relay's `path` without its query (`?api_key=…`, `?access_token=…` carry credentials). */
const PATH_ONLY = "CASE WHEN instr(path, '?') > 0 THEN substr(path, 1, instr(path, '?') - 1) ELSE path END"

/**
 * The rule for what a relay keeps of its request (method and path without
 * its query stay, for operators): the headers (forwarded credentials among
 * them, when a route's `forwardHeaders` lists them), the query (an API key or
 * access token may ride in it) and the body only while it is `processing`,
 * when the alarm may have to resend them. `complete` and `release` clear
 * them as they change the state; this trigger is the rule for any other
 * writer (it clears what a change of state past `processing` left behind);
 * schema step 11 puts it in place of step 10's (which kept the query) and
 * clears the relays already past it.
 *
 * @example
 * MIGRATIONS.push(RELAY_REQUEST_TRIGGER)
 */
export const RELAY_REQUEST_TRIGGER = `
  DROP TRIGGER IF EXISTS relays_keep_request_while_processing;
  CREATE TRIGGER relays_keep_request_while_processing
  AFTER UPDATE OF state ON relays
  WHEN NEW.state <> 'processing' AND (NEW.headers <> '[]' OR NEW.body IS NOT NULL OR instr(NEW.path, '?') > 0)
  BEGIN
    UPDATE relays SET headers = '[]', body = NULL, path = ${PATH_ONLY} WHERE lookup = NEW.lookup;
  END;
  UPDATE relays SET headers = '[]', body = NULL, path = ${PATH_ONLY}
  WHERE state <> 'processing' AND (headers <> '[]' OR body IS NOT NULL OR instr(path, '?') > 0);`
