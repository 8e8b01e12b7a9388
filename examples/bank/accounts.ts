import { DurableObject } from 'cloudflare:workers'

/**
 * The bank's ledger: one SQLite table of balances. Its `deposit` is the
 * state change the example protects with `once()` — it is deliberately not
 * idempotent, so a duplicate that slipped through would show in the balance.
 *
 * @example
 * const ledger = env.ACCOUNTS.get(env.ACCOUNTS.idFromName('ledger'))
 * await ledger.deposit('alice', 100) // 100
 */
export class Accounts extends DurableObject {
  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env)
    ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS balances (id TEXT PRIMARY KEY, cents INTEGER NOT NULL)')
  }

  /** Adds `cents` to the account and returns the new balance. */
  deposit(id: string, cents: number): number {
    return this.ctx.storage.sql
      .exec<{ cents: number }>(
        `INSERT INTO balances (id, cents) VALUES (?, ?)
         ON CONFLICT (id) DO UPDATE SET cents = cents + excluded.cents RETURNING cents`,
        id,
        cents,
      )
      .one().cents
  }

  /** The account's balance (0 for an unknown account). */
  balance(id: string): number {
    return this.ctx.storage.sql.exec<{ cents: number }>('SELECT cents FROM balances WHERE id = ?', id).toArray()[0]?.cents ?? 0
  }
}
