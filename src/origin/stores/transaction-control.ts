/** Statements that end or split a transaction, by their first keyword. */
const CONTROL = new Set(['BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE'])

/**
 * The first transaction statement (`BEGIN`, `COMMIT`, `END`, `ROLLBACK`,
 * `SAVEPOINT`, `RELEASE`) in SQL text, wherever it is: any statement of a
 * list (`INSERT …; COMMIT`), after comments, never inside a string, a quoted
 * name or a comment. A trigger's body (`CREATE TRIGGER … BEGIN …; END`) is
 * not one: SQLite allows no transaction statement there.
 *
 * @param sql - SQL text, one statement or several
 * @returns the keyword, upper-case, or undefined when there is none
 * @example
 * transactionControl("INSERT INTO t VALUES ('a; COMMIT'); -- done\nCOMMIT") // 'COMMIT'
 */
export function transactionControl(sql: string): string | undefined {
  let atStart = true // the next word is a statement's first
  let words = 0 // words of the statement so far
  let first: string | undefined // the statement's first word
  let trigger: 'no' | 'header' | 'body' = 'no'
  let second: string | undefined
  for (let i = 0; i < sql.length; ) {
    const ch = sql[i]!
    if (/\s/.test(ch)) i++
    else if (sql.startsWith('--', i)) i = lineEnd(sql, i)
    else if (sql.startsWith('/*', i)) i = sql.includes('*/', i + 2) ? sql.indexOf('*/', i + 2) + 2 : sql.length
    else if (ch === ';') {
      i++
      atStart = true
      if (trigger !== 'body') {
        trigger = 'no'
        words = 0
        first = undefined
        second = undefined
      }
    } else if (ch === "'" || ch === '"' || ch === '`' || ch === '[') {
      i = quoteEnd(sql, i, ch === '[' ? ']' : ch)
      atStart = false
      words++
    } else if (/[A-Za-z_]/.test(ch)) {
      const word = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i, i + 64))![0].toUpperCase()
      i += word.length
      if (trigger === 'body') {
        // Inside a trigger's body only its closing END starts a statement that matters.
        if (atStart && word === 'END') trigger = 'no'
      } else if (atStart && CONTROL.has(word)) {
        return word
      } else if (trigger === 'header' && word === 'BEGIN') {
        trigger = 'body'
      } else if (word === 'TRIGGER' && first === 'CREATE' && (words === 1 || (words === 2 && (second === 'TEMP' || second === 'TEMPORARY')))) {
        // CREATE [TEMP] TRIGGER, and only there: TRIGGER, BEGIN and END are legal names (CREATE TABLE trigger (begin INT))
        trigger = 'header'
      }
      if (words === 0) first = word
      if (words === 1) second = word
      atStart = false
      words++
    } else {
      i++
      atStart = false
      words++
    }
  }
  return undefined
}

function lineEnd(sql: string, i: number): number {
  const n = sql.indexOf('\n', i)
  return n < 0 ? sql.length : n + 1
}

/** The index after a quoted string or name that opens at `i` (a doubled closing quote is one inside it). */
function quoteEnd(sql: string, i: number, close: string): number {
  for (let j = i + 1; j < sql.length; j++) {
    if (sql[j] !== close) continue
    if (close !== ']' && sql[j + 1] === close) j++
    else return j + 1
  }
  return sql.length
}
