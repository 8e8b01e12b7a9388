/**
 * The input review of session 31 (bad input at the edge): one file per finding, collected here so the suite pays one runtime start for them, not one each.
 */
import './forward-headers-unforwardable.cases.js'
import './gateway-keyless-body-limit.cases.js'
import './gateway-keyless-write-caller.cases.js'
import './gateway-unreachable-routes.cases.js'
import './option-errors-nan.cases.js'
import './origin-encoding-kept.cases.js'
import './principal-distinct.cases.js'
import './proxy-timeout-over-default-deadline.cases.js'
