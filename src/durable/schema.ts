import { RELAY_REQUEST_TRIGGER, RELAYS_SCHEMA } from './relays.js'
import { ADMIT_COUNT_TRIGGER, COUNTERS_SCHEMA } from './counters.js'
import { DIRECTORY_SCHEMA } from './directory.js'
import { REPLICA_SET_COLUMNS } from './replica-sets.js'

// The storage schema is a contract with every object already deployed: the texts below are fixed once released, and a
// change is a new migration step. Where two tables hold the same thing (a record in the StableArea and in an OnceObject;
// the replicas table before and after step 5), they are built from one text, so they cannot drift apart.

/**
 * The columns every records table starts with, the StableArea's `records`
 * and an OnceObject's `once_records` alike: the lookup key (scope + key),
 * the request's fingerprint and id, the record's state, the lease token of
 * the run that holds it, and its attempt number.
 *
 * @example
 * `CREATE TABLE IF NOT EXISTS once_records (${RECORD_KEY_COLUMNS}, expires_at INTEGER NOT NULL)`
 */
export const RECORD_KEY_COLUMNS = `lookup       TEXT PRIMARY KEY,
     fingerprint  TEXT NOT NULL,
     request_id   TEXT NOT NULL,
     state        TEXT NOT NULL CHECK (state IN ('in_flight', 'committed', 'released')),
     token        TEXT,
     attempt      INTEGER NOT NULL`

/**
 * The table that holds a reply too large for one row, split into chunks
 * (`records.ts` writes and reads them), under the name `name`.
 *
 * @param name - `reply_chunks` in the StableArea, `once_reply_chunks` in an OnceObject
 * @returns its `CREATE TABLE IF NOT EXISTS` statement
 * @example
 * sql.exec(replyChunksTable('once_reply_chunks'))
 */
export function replyChunksTable(name: 'reply_chunks' | 'once_reply_chunks'): string {
  return `CREATE TABLE IF NOT EXISTS ${name} (
     lookup TEXT NOT NULL,
     idx    INTEGER NOT NULL,
     data   BLOB NOT NULL,
     PRIMARY KEY (lookup, idx)
   );`
}

/** The columns of `replicas`, in order (step 5 copies them into the rebuilt table). */
const REPLICA_COLUMNS = 'domain, name, url, state, acked, reason, failures, next_at, updated_at'

/** The column definitions of `replicas` whose `state` is one of `states` (step 5 rebuilds the table to add one). */
const replicasColumns = (states: readonly string[]): string => `
     domain     TEXT NOT NULL,
     name       TEXT NOT NULL,
     url        TEXT NOT NULL,
     state      TEXT NOT NULL CHECK (state IN (${states.map((s) => `'${s}'`).join(', ')})),
     acked      INTEGER NOT NULL DEFAULT 0,
     reason     TEXT,
     failures   INTEGER NOT NULL DEFAULT 0,
     next_at    INTEGER,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (domain, name)
   `

/**
 * Schema step for ordering domains (DESIGN §4): the request history (`log`),
 * per replica and domain its state and highest acknowledged sequence
 * (`replicas`), each replica's answer per sequence for divergence checks
 * (`results`), and per domain the next sequence (`domains`).
 *
 * @example
 * MIGRATIONS.push(ORDERED_SCHEMA)
 */
const ORDERED_SCHEMA = `CREATE TABLE IF NOT EXISTS domains (
     domain         TEXT PRIMARY KEY,
     next           INTEGER NOT NULL,
     pruned_through INTEGER NOT NULL DEFAULT 0,
     plan           TEXT
   );
   CREATE TABLE IF NOT EXISTS log (
     domain     TEXT NOT NULL,
     sequence   INTEGER NOT NULL,
     request_id TEXT NOT NULL,
     lookup     TEXT NOT NULL,
     method     TEXT NOT NULL,
     path       TEXT NOT NULL,
     headers    TEXT NOT NULL,
     body       BLOB,
     key        TEXT NOT NULL,
     noop       INTEGER NOT NULL DEFAULT 0,
     state      TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'committed')),
     rounds     INTEGER NOT NULL DEFAULT 0,
     ref_status INTEGER,
     ref_digest TEXT,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (domain, sequence)
   );
   CREATE TABLE IF NOT EXISTS replicas (${replicasColumns(['joining', 'active', 'lagging', 'suspect', 'draining'])});
   CREATE TABLE IF NOT EXISTS results (
     domain   TEXT NOT NULL,
     sequence INTEGER NOT NULL,
     origin   TEXT NOT NULL,
     status   INTEGER NOT NULL,
     digest   TEXT NOT NULL,
     PRIMARY KEY (domain, sequence, origin)
   );`

/**
 * Schema of the stable area's SQLite storage, as an ordered list of
 * migrations. The `meta` table keeps the version reached; a newer class
 * applies only the steps after it, inside one transaction.
 *
 * Version 1 holds the reply cache (`records` and `reply_chunks`); version 2
 * remembers replies whose body was already content-encoded. Ordering
 * domains, the request log, relays and origin progress (DESIGN §4) arrive as
 * later steps; `records` already carries `domain` and `sequence` so an
 * ordered admission needs no change to it.
 *
 * @example
 * // a later release appends a step; objects at version 1 run only that one
 * MIGRATIONS.length === SCHEMA_VERSION
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS records (
     ${RECORD_KEY_COLUMNS},
     lease_until  INTEGER,
     expires_at   INTEGER NOT NULL,
     provisional  INTEGER NOT NULL DEFAULT 0,
     status       INTEGER,
     headers      TEXT,
     body         BLOB,
     chunks       INTEGER NOT NULL DEFAULT 0,
     args         TEXT,
     domain       TEXT,
     sequence     INTEGER,
     created_at   INTEGER NOT NULL,
     committed_at INTEGER
   );
   CREATE INDEX IF NOT EXISTS records_by_expiry ON records (expires_at);
   CREATE INDEX IF NOT EXISTS records_by_lease ON records (lease_until) WHERE state = 'in_flight';
   ${replyChunksTable('reply_chunks')}`,
  // 2: a reply whose body the handler already encoded (Content-Encoding with encodeBody: 'manual') is replayed as is.
  `ALTER TABLE records ADD COLUMN manual_encoding INTEGER NOT NULL DEFAULT 0;`,
  // 3: relays, the requests the Worker forwards to origins, resent by the alarm when it dies.
  RELAYS_SCHEMA,
  // 4: ordering domains: the request log, replica progress and answers, per-domain sequences.
  ORDERED_SCHEMA,
  // 5: the alarm's backoff and poison window per entry (DESIGN §6), and the replica state `stale` (lagged past the
  // log's retention). SQLite cannot change a CHECK, so `replicas` is rebuilt.
  `ALTER TABLE log ADD COLUMN refused_since INTEGER;
   ALTER TABLE log ADD COLUMN retry_at INTEGER;
   CREATE TABLE replicas_v5 (${replicasColumns(['joining', 'active', 'lagging', 'suspect', 'draining', 'stale'])});
   INSERT INTO replicas_v5 (${REPLICA_COLUMNS}) SELECT ${REPLICA_COLUMNS} FROM replicas;
   DROP TABLE replicas;
   ALTER TABLE replicas_v5 RENAME TO replicas;`,
  // 6: the status page's counters, kept with the admits they count, and the status object's figures (counters.ts).
  COUNTERS_SCHEMA,
  // 7: each domain's replica set (replica-sets.ts), and the status object's directory of them (directory.ts).
  REPLICA_SET_COLUMNS + DIRECTORY_SCHEMA,
  // 8: what a replica had acknowledged in a domain it was removed from (replica-sets.ts: listed again at the same URL,
  // it resumes there), each reported replica's URL in the figures (the directory matches a domain that reported before
  // step 7 to a replica set by name and URL), and each replica set's count of domains recounted as the domains that
  // have it (step 7 counted those it was the target of).
  `CREATE TABLE IF NOT EXISTS removed_replicas (
     domain     TEXT NOT NULL,
     name       TEXT NOT NULL,
     url        TEXT NOT NULL,
     acked      INTEGER NOT NULL,
     removed_at INTEGER NOT NULL,
     PRIMARY KEY (domain, name)
   );
   ALTER TABLE status_replicas ADD COLUMN url TEXT;
   UPDATE replica_sets SET domains = (SELECT count(*) FROM directory WHERE set_id = replica_sets.id);`,
  // 9: a new key's record insert counts its admit in the same statement (Counters.admitted): one statement fewer on
  // every new key's path. An admit that takes an existing record over (an UPDATE) is still counted by Counters.count.
  ADMIT_COUNT_TRIGGER,
  // 10: a relay keeps its request's headers and body only while it is processing (credentials a route forwards
  // included): cleared when it completes or is released, and for the relays already past it. (Step 11 replaces its
  // trigger; its own text stays as it was, as every step's does.)
  `CREATE TRIGGER IF NOT EXISTS relays_keep_request_while_processing
   AFTER UPDATE OF state ON relays
   WHEN NEW.state <> 'processing' AND (NEW.headers <> '[]' OR NEW.body IS NOT NULL)
   BEGIN
     UPDATE relays SET headers = '[]', body = NULL WHERE lookup = NEW.lookup;
   END;
   UPDATE relays SET headers = '[]', body = NULL WHERE state <> 'processing';`,
  // 11: … and its path's query (an API key or access token rides in one), likewise.
  RELAY_REQUEST_TRIGGER,
]

/**
 * Version the newest migration brings the schema to.
 *
 * @example
 * sql.exec("SELECT v FROM meta WHERE k = 'schema_version'").one().v === SCHEMA_VERSION
 */
export const SCHEMA_VERSION = MIGRATIONS.length

/**
 * Brings `sql` up to {@link SCHEMA_VERSION}. Idempotent; run it inside
 * `blockConcurrencyWhile` at start-up.
 *
 * @param storage - the object's storage
 * @returns the version the schema was at before
 * @example
 * ctx.blockConcurrencyWhile(async () => { migrate(ctx.storage) })
 */
export function migrate(storage: DurableObjectStorage): number {
  const sql = storage.sql
  sql.exec('CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)')
  const row = sql.exec<{ v: number }>("SELECT v FROM meta WHERE k = 'schema_version'").toArray()[0]
  const from = row?.v ?? 0
  if (from > SCHEMA_VERSION) {
    throw new NewerSchema(`StableArea storage is at schema version ${from}, newer than this code (${SCHEMA_VERSION}); deploy the newer hono-once`)
  }
  if (from === SCHEMA_VERSION) return from
  storage.transactionSync(() => {
    for (const step of MIGRATIONS.slice(from)) sql.exec(step)
    sql.exec("INSERT INTO meta (k, v) VALUES ('schema_version', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", SCHEMA_VERSION)
  })
  return from
}

/** What {@link migrate} throws for storage newer than the code: every start fails alike until the newer code is deployed. */
export class NewerSchema extends Error {}

/** The runtime's words when a class migrated without SQLite storage (`new_classes`) touches `storage.sql`. */
export const NO_SQLITE = /SQL is not enabled|new_sqlite_classes/i

/**
 * Whether what an object's start-up threw makes it unusable until its
 * configuration or code changes (no SQLite storage, a schema newer than the
 * code), and why. Any other error may pass (a storage hiccup): rethrow it,
 * so the runtime resets the object and the next call starts it again,
 * rather than answering `misconfigured` for the object's lifetime.
 *
 * @param className - the object's class, named in the message
 * @param storage - the object's storage
 * @param err - what start-up threw
 * @returns the reason (callers prefix {@link MISCONFIGURED}), or undefined to rethrow `err`
 * @example
 * const why = startupFault('StableArea', ctx.storage, err)
 * if (why === undefined) throw err
 */
export function startupFault(className: string, storage: DurableObjectStorage, err: unknown): string | undefined {
  if (!(storage as Partial<DurableObjectStorage>).sql || NO_SQLITE.test(String(err))) {
    return `the ${className} class needs SQLite storage: declare it under new_sqlite_classes in a wrangler.toml migration (${String(err)})`
  }
  if (err instanceof NewerSchema) return err.message
  return undefined
}

/**
 * Prefix of the message of an error the object throws when it cannot work
 * at all (e.g. declared without SQLite storage). Callers answer it with a
 * non-retryable 500 rather than a 503 that clients would retry forever.
 *
 * @example
 * if (String(err).includes(MISCONFIGURED)) return problem('misconfigured', …)
 */
export const MISCONFIGURED = 'hono-once misconfigured:'

