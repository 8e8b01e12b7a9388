// The storage schema is a contract with every object already deployed: a refactor of the texts that build it (shared
// column lists, generated tables) must build the very same tables. This pins what the migrations and the OnceObject's
// records table build, as SQLite stores it (whitespace folded), for the tables that exist at schema version 11 (and their indexes and triggers; step 11 changed the relays trigger). A new
// migration step that adds a table or changes one of these updates this snapshot (and the list below) on purpose
// (`vitest -u`), never by accident.
import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { OnceRecords } from '../../src/durable/once-object-records.js'
import type { StableArea } from '../../src/durable/stable-area.js'

const TABLES_AT_VERSION_11 = [
  'meta', 'records', 'reply_chunks', 'relays', 'domains', 'log', 'replicas', 'results', 'counters', 'status_reporters', 'status_totals',
  'status_replicas', 'replica_sets', 'directory', 'removed_replicas', 'once_records', 'once_reply_chunks',
]

const fold = (sql: string): string => sql.replace(/\s+/g, ' ').replace(/\( /g, '(').replace(/ \)/g, ')').trim()

describe('the storage schema', () => {
  it('builds the same tables, indexes and triggers as at schema version 11', async () => {
    const stub = env.ONCE.get(env.ONCE.idFromName('schema-snapshot'))
    const rows = await runInDurableObject(stub, (_o: StableArea, state) => {
      new OnceRecords(state.storage.sql)
      return state.storage.sql
        .exec<{ type: string; name: string; tbl_name: string; sql: string | null }>('SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY tbl_name, type DESC, name')
        .toArray()
        .filter((r) => TABLES_AT_VERSION_11.includes(r.tbl_name))
        .map((r) => `${r.type} ${r.name}: ${fold(r.sql ?? '(implicit)')}`)
    })
    expect(new Set(rows.map((r) => r.split(' ')[1]!.replace(/:$/, ''))).size).toBe(rows.length)
    expect(rows).toMatchSnapshot()
  })
})
