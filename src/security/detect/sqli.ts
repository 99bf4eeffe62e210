/**
 * SQL injection, detected from token structure in the manner of libinjection.
 *
 * Written by hand: there is no JavaScript port of libinjection on npm (checked), and a native
 * binding would tie the gateway to a compiler toolchain and a C dependency in the request path.
 * This module follows the same idea on a smaller scale:
 *
 * 1. A SQL tokenizer turns the value into a fingerprint, one character per token: strings (all
 *    quote styles, doubled-quote and backslash escapes, and `q` for a string still open at the
 *    end — the shape an injection ending in `'1` has), numbers, `@var`/`@@var`, operators,
 *    comments (`--`, `#`, an unterminated `/*`; closed `/* *\/` count as whitespace and MySQL
 *    `/*!50000 ... *\/` is read as code), and words classified by kind (UNION, SELECT, statement
 *    verbs, logic AND/OR/XOR/&&/||, comparison words, functions = a word directly followed by
 *    `(`, dangerous functions such as SLEEP/BENCHMARK/PG_SLEEP/EXTRACTVALUE, other keywords).
 * 2. The value is tokenized in the three contexts libinjection uses: as-is (a numeric or
 *    unquoted context), and as if it were inserted inside a single-quoted and inside a
 *    double-quoted string literal — then the first quote of that kind in the value ends the
 *    string, which is exactly what an injection needs to do.
 * 3. Injection is decided from the fingerprint's structure, not from words: a quote-context break
 *    followed by a logic operator and a condition (`' OR 1=1`, `' AND SLEEP(5)`), a comment
 *    (`admin'--`), a stacked statement with a statement's shape (`; DROP TABLE x`,
 *    `; DELETE FROM x WHERE`), `UNION [ALL] SELECT` followed by a select list, ORDER BY / GROUP
 *    BY / HAVING enumeration (a call after GROUP BY included: `' GROUP BY CONCAT(`), a comparison
 *    word before a subquery (`' RLIKE (SELECT`), WAITFOR DELAY '...', INTO OUTFILE, `@@version`, calls of
 *    time/error/file functions (not right after a plain word: "Python's sleep()"), a number
 *    joined to a constant by a logic operator in a numeric context (`1 or 1`, `1 xor 1`,
 *    `0 or 1 limit 1`), `PROCEDURE ANALYSE(`. English uses the same words ("select the best
 *    option from the table", "drop me a note", "1=1 in boolean algebra", "O'Reilly", "1 or 2
 *    people") but not this structure.
 *
 * Linear time: the tokenizer visits each character a bounded number of times (a `[identifier]`
 * is looked for within 130 characters, not to the end of the value), the fingerprints are capped
 * (AS_IS_TOKENS, QUOTE_CONTEXT_TOKENS), and the rules run on the fingerprints only.
 */
import { isDigitCode as isDigit } from './scan.js';

/** Token kinds (one character each in the fingerprint). */
const KEYWORDS: ReadonlyMap<string, string> = new Map(
  (
    [
      ['&', 'AND OR XOR'],
      ['!', 'NOT'],
      ['L', 'LIKE RLIKE REGEXP ILIKE GLOB SOUNDS'],
      ['i', 'IN'],
      ['j', 'IS'],
      ['w', 'BETWEEN'],
      ['a', 'DIV MOD'],
      ['n', 'NULL'],
      ['t', 'TRUE FALSE UNKNOWN'],
      ['U', 'UNION EXCEPT INTERSECT MINUS'],
      ['S', 'SELECT'],
      ['A', 'ALL DISTINCT DISTINCTROW TOP'],
      ['D', 'DROP CREATE ALTER TRUNCATE RENAME'],
      ['R', 'DELETE'],
      ['I', 'INSERT REPLACE'],
      ['P', 'UPDATE'],
      ['X', 'EXEC EXECUTE'],
      ['W', 'WAITFOR'],
      ['Y', 'DECLARE'],
      ['Z', 'SHUTDOWN'],
      ['G', 'SET'],
      ['K', 'CALL'],
      ['C', 'COPY'],
      ['T', 'TABLE DATABASE SCHEMA USER VIEW INDEX PROCEDURE FUNCTION TRIGGER LOGIN COLUMN'],
      ['M', 'FROM'],
      ['N', 'INTO'],
      ['E', 'VALUES'],
      ['h', 'WHERE'],
      ['d', 'DELAY TIME'],
      ['Q', 'ORDER GROUP'],
      ['B', 'BY'],
      ['J', 'HAVING'],
      ['l', 'LIMIT OFFSET'],
      ['O', 'OUTFILE DUMPFILE'],
      ['e', 'EXISTS'],
      ['m', 'ADD IDENTIFIED MODIFY'],
      ['g', 'GRANT REVOKE'],
      ['k', 'AS ON CASE WHEN THEN ELSE END JOIN INNER OUTER CROSS NATURAL USING WITH ASC DESC TO IF FOR ANY SOME PRIVILEGES'],
    ] as const
  ).flatMap(([kind, words]) => words.split(' ').map((w) => [w, kind] as [string, string])),
);
/** Keyword kinds that stay keywords when directly followed by `(` (others become function calls). */
const KEEP_BEFORE_PAREN = new Set(['&', '!', 'i', 'e', 'S', 'U', 'E', 'L', 'w', 'j', 'A', 'M', 'h', 'J', 'C']);
/** Calls used for time-based, error-based and file-reading injection. */
const DANGEROUS_FUNCTIONS = new Set([
  'SLEEP', 'PG_SLEEP', 'BENCHMARK', 'EXTRACTVALUE', 'UPDATEXML', 'LOAD_FILE', 'XP_CMDSHELL', 'RANDOMBLOB', 'SYS_EVAL',
  'SYS_EXEC', 'GROUP_CONCAT', 'RECEIVE_MESSAGE', 'GET_HOST_ADDRESS', 'GET_HOST_NAME', 'NAME_CONST', 'GTID_SUBSET',
]);
const DANGEROUS_PREFIX = /^(?:DBMS_|UTL_)/;
/** MSSQL extended/system procedures, dangerous even without parentheses (`EXEC xp_cmdshell 'dir'`). */
const SYSTEM_PROCEDURE = /^(?:MASTER\.+)?(?:XP_\w+|SP_(?:OA\w+|CONFIGURE|EXECUTESQL|ADDLOGIN|ADDSRVROLEMEMBER|PASSWORD|MAKEWEBTASK|EXECUTE\w*))$/;
/** One-letter prefixes of typed string literals: N'..', X'..', B'..', E'..'. */
const STRING_PREFIX = /^[NXBE]$/i;

function isSpace(c: number): boolean {
  return c <= 32 || c === 0xa0 || c === 0x2028 || c === 0x2029 || c === 0x3000 || c === 0xfeff;
}
function isWordStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || (c >= 0x80 && !isSpace(c));
}
function isWordChar(c: number): boolean {
  return isWordStart(c) || isDigit(c) || c === 36;
}
function isHex(c: number): boolean {
  return isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/** Longest tail of an unclosed string still read as the open string of an injection. */
const OPEN_STRING_TAIL = 32;

/** Index of the quote closing a string whose content starts at `from`, or -1 if it never closes. */
function closingQuote(s: string, from: number, quote: number): number {
  for (let j = from; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 92) {
      j++;
      continue;
    }
    if (c === quote) {
      if (s.charCodeAt(j + 1) === quote) {
        j++;
        continue;
      }
      return j;
    }
  }
  return -1;
}

function lineEnd(s: string, from: number): number {
  const nl = s.indexOf('\n', from);
  return nl === -1 ? s.length : nl + 1;
}

function classifyWord(word: string, beforeParen: boolean, previousWord: string): string {
  if (word.length > 40) return 'b';
  const upper = word.toUpperCase();
  // MySQL `... PROCEDURE ANALYSE(...)`: error-based injection after a number or LIMIT
  if (beforeParen && previousWord === 'PROCEDURE' && (upper === 'ANALYSE' || upper === 'ANALYZE')) return 'F';
  const first = upper.charCodeAt(0);
  // X(P_), S(P_), M(ASTER..): only then can it be a system procedure
  if ((first === 88 || first === 83 || first === 77) && SYSTEM_PROCEDURE.test(upper)) return 'F';
  if (beforeParen) {
    const lastDot = upper.lastIndexOf('.');
    const name = lastDot === -1 ? upper : upper.slice(lastDot + 1);
    if (DANGEROUS_FUNCTIONS.has(name) || DANGEROUS_PREFIX.test(upper)) return 'F';
  }
  const kind = KEYWORDS.get(upper);
  if (kind === undefined) return beforeParen ? 'f' : 'b';
  if (beforeParen && !KEEP_BEFORE_PAREN.has(kind)) return 'f';
  return kind;
}

/**
 * The fingerprint of `s` (at most `maxTokens` tokens). With `quote` set (39 for `'`, 34 for
 * `"`), `s` is read as if it followed that opening quote: the fingerprint then starts with `s`
 * when the value closes the string, or is just `q` when it never does.
 */
export function sqlFingerprint(s: string, quote: 0 | 34 | 39, maxTokens: number): string {
  let fp = '';
  let i = 0;
  const n = s.length;
  let versioned = false;
  let previousWord = '';
  if (quote !== 0) {
    const close = closingQuote(s, 0, quote);
    if (close === -1) return 'q';
    fp = 's';
    i = close + 1;
  }
  while (i < n && fp.length < maxTokens) {
    const c = s.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    const next = s.charCodeAt(i + 1);
    switch (c) {
      case 39: // '
      case 34: {
        // "
        const close = closingQuote(s, i + 1, c);
        if (close === -1) {
          // A string left open: the tail an injection leaves for the query's own closing quote
          // (`' OR '1'='1`) is short; a sentence after an apostrophe ("Is 'or' a reserved word
          // in most languages?") is not a string the query could close into a condition.
          fp += n - i - 1 <= OPEN_STRING_TAIL || !/\s/.test(s.slice(i + 1)) ? 'q' : 'x';
          i = n;
        } else {
          fp += 's';
          i = close + 1;
        }
        continue;
      }
      case 96: {
        // `identifier`
        const close = s.indexOf('`', i + 1);
        fp += 'b';
        i = close === -1 ? n : close + 1;
        continue;
      }
      case 91: {
        // [identifier]: at most 130 characters (looking further would rescan the rest of the
        // value from every `[`, quadratic on `[[[[...`)
        let close = -1;
        for (let j = i + 1; j < n && j - i < 130; j++) {
          if (s.charCodeAt(j) === 93) {
            close = j;
            break;
          }
        }
        if (close !== -1) {
          fp += 'b';
          i = close + 1;
        } else {
          fp += 'x';
          i++;
        }
        continue;
      }
      case 35: // #
        fp += 'c';
        i = lineEnd(s, i);
        continue;
      case 45: // -
        if (next === 45) {
          fp += 'c';
          i = lineEnd(s, i);
        } else {
          fp += 'a';
          i++;
        }
        continue;
      case 47: // /
        if (next === 42) {
          if (s.charCodeAt(i + 2) === 33) {
            // /*!50000 code */ — MySQL runs the content
            versioned = true;
            i += 3;
            while (i < n && isDigit(s.charCodeAt(i))) i++;
            continue;
          }
          const close = s.indexOf('*/', i + 2);
          if (close === -1) {
            fp += 'c';
            i = n;
          } else {
            i = close + 2;
          }
          continue;
        }
        fp += 'a';
        i++;
        continue;
      case 42: // *
        if (versioned && next === 47) {
          versioned = false;
          i += 2;
          continue;
        }
        fp += 'a';
        i++;
        continue;
      case 40:
      case 41:
      case 44:
      case 59:
        fp += s[i];
        i++;
        continue;
      case 46: // .
        if (isDigit(next)) break; // number
        fp += '.';
        i++;
        continue;
      case 61: // =
        fp += 'o';
        i += next === 61 ? 2 : 1;
        continue;
      case 60: // <
        if (next === 61 && s.charCodeAt(i + 2) === 62) {
          fp += 'o';
          i += 3;
        } else if (next === 60) {
          fp += 'a';
          i += 2;
        } else {
          fp += 'o';
          i += next === 61 || next === 62 ? 2 : 1;
        }
        continue;
      case 62: // >
        if (next === 62) {
          fp += 'a';
          i += 2;
        } else {
          fp += 'o';
          i += next === 61 ? 2 : 1;
        }
        continue;
      case 33: // !
        if (next === 61 || next === 60 || next === 62) {
          fp += 'o';
          i += 2;
        } else {
          fp += '!';
          i++;
        }
        continue;
      case 124: // |
        fp += next === 124 ? '&' : 'a';
        i += next === 124 ? 2 : 1;
        continue;
      case 38: // &
        fp += next === 38 ? '&' : 'a';
        i += next === 38 ? 2 : 1;
        continue;
      case 58: // :
        if (next === 61) {
          fp += 'o';
          i += 2;
        } else if (next === 58) {
          fp += 'a';
          i += 2;
        } else {
          fp += 'x';
          i++;
        }
        continue;
      case 43:
      case 37:
      case 94:
      case 126:
        fp += 'a';
        i++;
        continue;
      case 64: {
        // @var, @@var
        const system = next === 64;
        let j = i + (system ? 2 : 1);
        const start = j;
        while (j < n && (isWordChar(s.charCodeAt(j)) || s.charCodeAt(j) === 46)) j++;
        if (j === start) {
          fp += 'x';
          i = j;
        } else {
          fp += system ? 'V' : 'v';
          i = j;
        }
        continue;
      }
      default:
        break;
    }

    if (isDigit(c) || c === 46) {
      let j = i;
      if (c === 48 && (next === 120 || next === 88) && isHex(s.charCodeAt(i + 2))) {
        j = i + 2;
        while (j < n && isHex(s.charCodeAt(j))) j++;
      } else if (c === 48 && (next === 98 || next === 66) && (s.charCodeAt(i + 2) === 48 || s.charCodeAt(i + 2) === 49)) {
        j = i + 2;
        while (j < n && (s.charCodeAt(j) === 48 || s.charCodeAt(j) === 49)) j++;
      } else {
        while (j < n && isDigit(s.charCodeAt(j))) j++;
        if (s.charCodeAt(j) === 46) {
          j++;
          while (j < n && isDigit(s.charCodeAt(j))) j++;
        }
        const e = s.charCodeAt(j);
        if (e === 101 || e === 69) {
          let k = j + 1;
          const sign = s.charCodeAt(k);
          if (sign === 43 || sign === 45) k++;
          if (isDigit(s.charCodeAt(k))) {
            j = k;
            while (j < n && isDigit(s.charCodeAt(j))) j++;
          }
        }
      }
      fp += 'n';
      i = j;
      continue;
    }

    if (isWordStart(c)) {
      let j = i + 1;
      for (;;) {
        while (j < n && isWordChar(s.charCodeAt(j))) j++;
        // qualified names: schema.table, db..proc
        let k = j;
        while (s.charCodeAt(k) === 46) k++;
        if (k > j && k - j <= 2 && isWordStart(s.charCodeAt(k))) {
          j = k;
          continue;
        }
        break;
      }
      const word = s.slice(i, j);
      const after = s.charCodeAt(j);
      if ((after === 39 || after === 34) && STRING_PREFIX.test(word)) {
        // N'...', X'...': a string literal
        i = j;
        continue;
      }
      fp += classifyWord(word, after === 40, previousWord);
      previousWord = word.length <= 16 ? word.toUpperCase() : '';
      i = j;
      continue;
    }

    fp += 'x';
    i++;
  }
  return fp;
}

// ---- Structure rules over fingerprints ----------------------------------------------------

/** A condition after AND/OR: a comparison, a tautology, a call, a subquery. */
const COND =
  '!*(?:a?n(?:[c;)oa,w]|L[sqn]|i\\(|j!?[nt])|t[c;)o]|[sbvV](?:o|L[sqnb]|j!?[nt]|i\\()|s[ac]|q$|V|v(?:$|[ca])|[fF]|\\((?:[SnsfFvqVt(!a]|b[oLij])|e\\()';
/** The shape of a statement: a verb with its object, not just the verb. */
const VERBS =
  'Dk?T(?:k?e?)?(?:b(?:$|[;c(m])|f\\()|RMb(?:$|[;ch])|IN(?:b(?:[(ES;c]|$)|f\\()|PbG|X(?:F|s|v|\\(|b(?:$|[snv;c,]))|Wd[sq]|Yv|Z(?:$|[;ck])|Gv|Kf|C\\(S|F';
/** After a `;`: any statement, SELECT with a select list. */
const STATEMENT = `(?:SA?(?:[nvVfFsqt(a]|[bT][,Mc)])|g[ASPRI]|${VERBS})`;
/** At the very start of an unquoted value: SELECT needs more than one word to be SQL. */
const STATEMENT_AT_START = `(?:SA?(?:aM|n(?:[,c;]|$)|[fFvV]|b,)|${VERBS})`;
/** A keyword may be a column name in a select list (`SELECT user, password FROM`). */
const UNION_SELECT = 'UA?\\(*SA?(?:[nvVfFsqt(!a]|[bT][,M.c)]|c)';

/**
 * A number joined to a constant by a logic operator and nothing after (or a comment, `;`,
 * LIMIT, ORDER/GROUP BY): `1 or 1`, `1 || 1`, `1 xor 1`, `0 or 1 limit 1`, `(1) or (1)`. In a
 * numeric context (`WHERE id = <value>`) it is true for every row. "1 or 2 people" goes on.
 */
const NUMERIC_TAUTOLOGY = '\\(*a?n\\)*(?:&!*\\(*a?[ntvV]\\)*)+(?:$|[c;l]|QB)';
/** The same after a quote break: `' or 1`, `') || (1 limit 1`. */
const QUOTED_TAUTOLOGY = 's\\)*(?:&!*\\(*a?[ntvV]\\)*)+(?:$|[c;l]|QB)';
/** Value inserted into a string literal: the first quote closes it, then SQL follows. */
const QUOTE_CONTEXT = new RegExp(
  `^(?:${QUOTED_TAUTOLOGY}|s\\)*(?:&${COND}|;(?:${STATEMENT}|c|$)|${UNION_SELECT}|c|QB[nbsfF(]|J[nbfFV(]|ln|NO|Wd[sq]|a(?:[fF]|\\(+S)|o(?:[fF]|\\(+S|q$)|L(?:[sq]|\\(+S)|i\\(S))`,
);
/** Value inserted where a number or identifier goes. */
const AS_IS = new RegExp(
  `^(?:(?:a?n|s|v|V|t)\\)*(?:&${COND}|QB[nbs]|J[nbfFV(]|ln)|${NUMERIC_TAUTOLOGY}|b\\)+&${COND}|\\)+&${COND}|&${COND}|${STATEMENT_AT_START}|${UNION_SELECT})`,
);
/** Structures that are injection wherever they appear. */
const ANYWHERE = new RegExp(`;${STATEMENT}|${UNION_SELECT}|(?:^|[^b])F|V|Wd[sq]|NO`);

/** Tokens read in the quote contexts: the decision is made near the break. */
const QUOTE_CONTEXT_TOKENS = 64;
/** Cap for the as-is pass over long prose (allocation and time bound). */
const AS_IS_TOKENS = 4096;

/** Tokens enough for every anchored as-is rule. */
const AS_IS_ANCHORED_TOKENS = 12;

function injectedIn(s: string): boolean {
  const full = ANYWHERE_HINT.test(s);
  const asIs = sqlFingerprint(s, 0, full ? AS_IS_TOKENS : AS_IS_ANCHORED_TOKENS);
  if (AS_IS.test(asIs) || (full && ANYWHERE.test(asIs))) return true;
  for (const quote of [39, 34] as const) {
    if (!s.includes(quote === 39 ? "'" : '"')) continue;
    const fp = sqlFingerprint(s, quote, full ? QUOTE_CONTEXT_TOKENS : AS_IS_ANCHORED_TOKENS);
    if (QUOTE_CONTEXT.test(fp) || (full && ANYWHERE.test(fp))) return true;
  }
  return false;
}

/** Without one of these, none of the ANYWHERE structures can be present. */
const ANYWHERE_HINT = /[;@(]|union|except|intersect|minus|waitfor|outfile|dumpfile|xp_|sp_/i;
/** Without one of these, no rule can match at all (every rule needs punctuation or UNION/ORDER/...). */
const QUICK = /['"`;#=<>@|&()\-/*!]|union|except|intersect|minus|order|group|having|limit|\b(?:or|and|xor)\b|xp_/i;

/**
 * True when `value` is SQL injection. `decoded` is the percent-decoded form (see decode.ts);
 * typical evasions (`+` for spaces, `&#39;` for quotes, `\'` escaping) are also tried.
 */
export function detectSqlInjection(value: string, decoded: string = value): boolean {
  if (!QUICK.test(decoded)) return false;
  if (injectedIn(decoded)) return true;
  if (decoded !== value && injectedIn(value)) return true;
  if (decoded.includes('+') && !/\s/.test(decoded) && injectedIn(decoded.replace(/\+/g, ' '))) return true;
  if (/&(?:#x?[0-9a-f]+|apos|quot);?/i.test(decoded)) {
    const unescaped = decoded.replace(/&#0*39;?|&#x0*27;?|&apos;?/gi, "'").replace(/&#0*34;?|&#x0*22;?|&quot;?/gi, '"');
    if (unescaped !== decoded && injectedIn(unescaped)) return true;
  }
  if (/\\['"]/.test(decoded) && injectedIn(decoded.replace(/\\(['"])/g, '$1'))) return true;
  return false;
}
