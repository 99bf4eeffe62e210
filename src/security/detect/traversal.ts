/**
 * Path traversal: `..` path segments (with `/` or `\` separators, any encoding), absolute paths
 * to well-known sensitive files, UNC paths to another machine, and NUL bytes (truncation of a
 * file name).
 *
 * How strict depends on where the value is:
 * - path, query and header values are parameters, never prose: any `..` segment is rejected;
 *   so is any mention of a sensitive system path.
 * - body string values may be prose ("import it from ../utils"), so a plain `..` segment is
 *   rejected only when the value looks like a path rather than a sentence: it has no
 *   whitespace, or it starts with the `..` segment, or it climbs three or more levels, or the
 *   climb reaches a sensitive file. Encoded traversal (`%2e%2e%2f`, `%c0%ae`, ...) is rejected
 *   everywhere: nobody writes that in prose.
 */
import { foldLookalikes } from './decode.js';

export type Position = 'path' | 'query' | 'header' | 'body';

/**
 * A `..` segment: two or more dots followed by a separator (`;` covers `..;/` path parameters),
 * or a final `..`, starting the value or after a separator, whitespace, `=`, `:`, a quote or
 * a parenthesis. An ellipsis ("the ... previous page", "wait...") is not followed by one.
 */
const DOTDOT_SEGMENT = /(?:^|[\s/\\=:'"(,;])(?:\.{2,}[/\\;]|\.\.$)/;
const STARTS_WITH_DOTDOT = /^["'`(]?\.{2,}[/\\]/;
/**
 * A climb of three or more `..` segments in a row. Every pattern that starts on a run of dots
 * does so only at the run's first dot (`(?<!\.)`): from every dot of a 100 KB run it would
 * rescan the run each time, which is quadratic.
 */
const DEEP_CLIMB = /(?<!\.)(?:\.{2,}[/\\;]+){3}/;
/** The first `..` (or longer) followed by a separator. */
const CLIMB = /(?<!\.)\.{2,}[/\\]/;

/** Files and folders whose appearance in a request is an attack on a system path, not data. */
const SENSITIVE =
  /(?:^|[/\\])(?:etc[/\\]+(?:passwd|shadow|group|hosts|sudoers|master\.passwd|issue)\b|proc[/\\]+(?:self|\d+)[/\\]|(?:windows|winnt)[/\\]+(?:win\.ini|system\.ini|system32|repair)\b|boot\.ini\b|inetpub[/\\]|\.ssh[/\\]|\.htpasswd\b|\.htaccess\b|web\.config\b|web-inf[/\\]|\.aws[/\\]+credentials|\.git[/\\]+config|\.bash_history\b|\.env$)/i;
/**
 * A path at the start of the value, as a file name is given: absolute, a file URL, from the home
 * folder (`~/.aws/credentials`), or a relative one into a dot folder (`.git/config`, `./.env`).
 */
const PATH_START = /^(?:file:[/\\]*(?:[a-z]:)?|[a-z]:|[/\\]|~[/\\]|\.)/i;

/**
 * A UNC path (`\\host\share\...`, and the `\\?\` and `\\.\` device forms): a Windows
 * backend that opens it reads a file of another machine, and sends that machine its NTLM
 * credentials on the way.
 */
const UNC_START = /^\\\\[^\\/\s]+[\\/]/;

const WHITESPACE = /\s/;

/**
 * `raw` is the value as received; `decoded` the same after percent-decoding (see decode.ts).
 * Returns true when the value is a traversal attempt for its position.
 */
export function detectTraversal(raw: string, decoded: string, position: Position): boolean {
  const value = foldLookalikes(decoded);
  if (value.includes('\0')) return true;

  const trimmed = value.trim();
  const hasDotDot = DOTDOT_SEGMENT.test(value);
  if (hasDotDot) {
    if (position !== 'body') return true;
    // Encoded traversal: the raw text did not show the `..` segment, decoding revealed it.
    if (!DOTDOT_SEGMENT.test(foldLookalikes(raw))) return true;
    if (!WHITESPACE.test(trimmed)) return true;
    if (STARTS_WITH_DOTDOT.test(trimmed) || DEEP_CLIMB.test(value)) return true;
    const at = value.search(CLIMB);
    if (at >= 0 && SENSITIVE.test(value.slice(at))) return true;
  }

  if (UNC_START.test(trimmed) && (position !== 'body' || !WHITESPACE.test(trimmed))) return true;

  if (SENSITIVE.test(value)) {
    if (position !== 'body') return true;
    // In prose a mention of /etc/passwd is a question about it; as the whole value it is a target.
    if (PATH_START.test(trimmed) && !WHITESPACE.test(trimmed)) return true;
  }
  return false;
}
