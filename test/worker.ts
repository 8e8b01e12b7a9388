/**
 * The Worker the `workers` test project runs: the bank example, plus a
 * StableArea class declared without SQLite storage (a misconfiguration the
 * tests must answer clearly).
 */
import { StableArea } from '../src/index.js'

export * from '../examples/bank/worker.js'
export { default } from '../examples/bank/worker.js'
export { Account } from '../examples/bank-object/account.js'
export { OnceAccount } from './once-object/fixture.js'
import { OnceAccount } from './once-object/fixture.js'
/** An OnceObject on key-value storage (migrated with new_classes): every call must say so. */
export class OnceAccountKv extends OnceAccount {}

/** StableArea migrated with `new_classes` (key-value storage, no SQL): every call must say so. */
export class StableAreaKv extends StableArea {}
