import type { StableArea } from '../src/durable/stable-area.js'
import type { Accounts } from '../examples/bank/accounts.js'
import type { Account } from '../examples/bank-object/account.js'
import type { OnceAccount } from './once-object/fixture.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the origin farm started by test/origin-farm.ts. */
    farm: string
  }
}

declare global {
  namespace Cloudflare {
    interface GlobalProps {
      mainModule: typeof import('./worker.js')
    }
    interface Env {
      ONCE: DurableObjectNamespace<StableArea>
      ACCOUNTS: DurableObjectNamespace<Accounts>
      RECEIVER_DB: D1Database
      ONCE_KV: DurableObjectNamespace<StableArea>
      /** The signing secret of tests that sign (a var of test/wrangler.toml). */
      TEST_SIGNING_SECRET: string
      ONCE_ACCOUNT: DurableObjectNamespace<OnceAccount>
      ACCOUNT: DurableObjectNamespace<Account>
    }
  }
}
