/**
 * The docs review of session 31 (the docs as a contract): one file per finding or group of claims, collected here so the suite pays one runtime start for them, not one each.
 */
import './claims-dispatch.cases.js'
import './claims-more.cases.js'
import './claims-once.cases.js'
import './claims-wire.cases.js'
import './docs-say-what-code-does.cases.js'
import './expire-key-clears-reply-cache.cases.js'
import './keyless-unavailable-not-retryable.cases.js'
import './reply-lost-one-status.cases.js'
