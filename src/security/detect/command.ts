/**
 * Shell command injection: a shell metacharacter that starts a new command (`;`, `|`, `||`,
 * `&`, `&&`, a newline, `` ` ``, `$(`) followed by a known command, plus the obfuscations that
 * only make sense to a shell (`${IFS}`, `{cat,/etc/passwd}`, `c'a't`, `/???/??t`, `${jndi:`).
 *
 * The word after the metacharacter is read the way a shell reads it: quotes and backslashes are
 * removed (`'i'd`, `w\hoami`), `$'\x69\x64'` is decoded, expansions that are empty in `sh -c`
 * are dropped (`w$()hoami`, `i$@d`, `i$1d`). A command word the shell builds at run time is
 * injection whatever it holds: a variable (`; $X`, `X=id;${X}`), a substring or substitution of
 * one (`${PATH:0:1}bin${PATH:0:1}id`), or an expansion glued to letters (`${x}id`).
 *
 * Prose uses the same metacharacters ("cats; dogs", "rock & roll", "pros | cons"), so a command
 * name alone is not enough for words that are also English ("cat", "find", "sleep", "type"):
 * for those the argument must look like shell (a flag, a path, a URL, an IP, a redirection, a
 * quote, `$`), or the command must stand alone in a way prose does not (`;id;`, `| id`).
 * Commands that are not words ("whoami", "wget", "chmod") count with any argument.
 *
 * Markdown is prose: a code span inside a sentence ("run `ls -la` to see hidden files") is not
 * read as command substitution, and `|` on a markdown table row is a cell separator. A span is
 * not prose when a shell separator comes right before it (`; `id``) or when it decodes or
 * downloads something and runs it (`` `echo aWQ= | base64 -d` ``). (Residual risk, accepted: a
 * shell that received such a sentence would run the span; the services behind the gateway take
 * natural language, not shell.)
 *
 * Linear time: the scan visits each separator once; the word after it is read for at most
 * MAX_WORD characters; the arguments end at the next separator; the line of a `|` is looked at
 * once per line, not once per `|`; brace expansion is checked around each `{` by hand.
 */
import { isLetterCode, isSpaceCode, isWordCode, skipSpaces } from './scan.js';

/** Not English words: any use after a metacharacter is a command. */
const UNAMBIGUOUS = new Set([
  'whoami', 'uname', 'ifconfig', 'ipconfig', 'netstat', 'wget', 'curl', 'ncat', 'netcat', 'sh', 'zsh', 'ksh', 'csh', 'tcsh',
  'busybox', 'ls', 'chmod', 'chown', 'chgrp', 'pwd', 'powershell', 'powershell.exe', 'pwsh', 'cmd', 'cmd.exe', 'certutil',
  'bitsadmin', 'wmic', 'systeminfo', 'tasklist', 'taskkill', 'printenv', 'nmap', 'tftp', 'rsync', 'base64', 'xxd', 'gawk',
  'awk', 'sed', 'grep', 'egrep', 'fgrep', 'nohup', 'sudo', 'crontab', 'mkfifo', 'nslookup', 'traceroute', 'tracert',
  'useradd', 'usermod', 'schtasks', 'msiexec', 'rundll32', 'regsvr32', 'mshta', 'cscript', 'wscript', 'iptables', 'killall',
  'pkill', 'xargs', 'printf', 'telnet', 'ssh', 'scp', 'lsof', 'uptime', 'systemctl', 'chattr', 'passwd', 'ifup', 'socat',
]);
/** Also English words (or common in prose): need a shell-looking argument or a bare position. */
const AMBIGUOUS = new Set([
  'id', 'cat', 'more', 'less', 'head', 'tail', 'type', 'set', 'dir', 'net', 'kill', 'touch', 'ping', 'echo', 'sleep',
  'find', 'sort', 'which', 'who', 'time', 'wait', 'read', 'test', 'env', 'su', 'ps', 'top', 'cut', 'date', 'file', 'host',
  'tee', 'cp', 'mv', 'rm', 'mkdir', 'cd', 'exit', 'export', 'source', 'start', 'call', 'copy', 'del', 'move', 'ver',
  'tree', 'whois', 'dig', 'nc', 'bash', 'python', 'python3', 'perl', 'ruby', 'php', 'node', 'lua', 'eval', 'exec',
  'reg', 'sc',
]);
/**
 * Ambiguous commands that reveal something on their own and are not English words: `a & id` is
 * a command even though "time & date" at the end of a sentence is prose.
 */
const BARE_COMMANDS = new Set(['id', 'env', 'ps', 'su']);
/** `net user`, `net localgroup`: Windows account commands whose argument is a plain word. */
const NET_SUBCOMMAND = /^(?:user|localgroup|group|use|view|share|start|stop|session|accounts)\b/i;

/** Where a new command can start: a separator followed (after blanks) by something that can start a word. */
const COMMAND_SEPARATOR = /(?:\$\(|`|\|\||&&|[;|&\n\r])(?=[ \t]*[a-z/_'"\\$`])/gi;
/** A plain command word where it starts (sticky): an optional absolute path, then the name. */
const PLAIN_COMMAND = /((?:\/[\w.-]+)*\/)?([a-z][\w.-]*)/iy;
/** The same, at the start of a word the shell has unquoted. */
const UNQUOTED_COMMAND = /^((?:\/[\w.-]+)*\/)?([a-z][\w.-]*)/i;
/** `NAME=` starting a word: a variable assignment. */
const ASSIGNMENT = /^([a-z_]\w*)=/i;
const SHELLISH_ARGUMENT =
  /^(?:-{1,2}[a-z0-9]|[/~.$<>'"{*@%]|\d{1,3}(?:\.\d{1,3}){3}|[\w.-]+\.[a-z]{2,6}(?:[/:?]|$)|[a-z][\w+.-]*:\/\/|[a-z]:\\|\+x$)/i;
const DIGITS = /^\d+$/;
/** A redirection to a path or a descriptor among the arguments: `echo x > /tmp/pwn`, `2>&1`. */
const REDIRECTION = /(?:^|\s)\d?(?:>>?|<)\s?[/~.$&]/;

const IFS_OR_LOOKUP = /\$\{?IFS\b|\$\{(?:jndi|env|sys|java|lower|upper|date|::-)[:}]/i;
/** `/???/??t`: wildcards standing for a path (bounded quantifiers, so linear). */
const GLOB_PATH = /\/[\w*]{0,64}\?[\w?*]{0,64}\/[\w*/]{0,64}\?/;
const REDIRECT_DEVICE = />&?\s*\/dev\/(?:tcp|udp)\//i;
/** Quotes and backslashes inside a word are removed by the shell: `{c'a't,...}` (command words: readWord). */
const INWORD_OBFUSCATION = /(?<=[a-z])(?:''|""|['"\\])(?=[a-z])/gi;
/** A markdown code span with whitespace (or line start/end, or light punctuation) around it. */
const MARKDOWN_SPAN = /(?<=^|[\s(])`[^`\n]+`(?=$|[\s.,!?:;)-])/g;
/** In a code span, decoding or downloading something to run it is not something prose shows. */
const SPAN_DANGER: readonly RegExp[] = [
  /\bbase64\s+(?:-d|--decode)\b/i, // decoding
  /\bxxd\s+-r\b/i,
  /\|\s*(?:ba|z|k|da|c)?sh\b/i, // piping into a shell
  /\/dev\/(?:tcp|udp)\//i, // a reverse shell
];
/** Where the arguments of a command end. */
const ARGUMENTS_END = /[;&|\n\r`]/g;

/** The longest command word read after a separator (a longer one is not a command name). */
const MAX_WORD = 96;
/** Most variable names remembered from `NAME=value` assignments. */
const MAX_ASSIGNED = 32;

/** The longest command name in the sets above. */
const LONGEST_COMMAND = Math.max(...[...UNAMBIGUOUS, ...AMBIGUOUS].map((c) => c.length));

function isCommand(name: string): 'unambiguous' | 'ambiguous' | null {
  if (name.length > LONGEST_COMMAND) return null;
  const lower = name.toLowerCase();
  if (UNAMBIGUOUS.has(lower)) return 'unambiguous';
  if (AMBIGUOUS.has(lower)) return 'ambiguous';
  return null;
}

/** A code span in prose: not after a shell separator, and not decoding or downloading code. */
function isProseSpan(s: string, span: string, offset: number): boolean {
  if (SPAN_DANGER.some((re) => re.test(span))) return false;
  let k = offset;
  while (k > 0 && (isSpaceCode(s.charCodeAt(k - 1)) || s.charCodeAt(k - 1) === 40)) k--;
  if (k === 0) return true;
  return !';|&`$'.includes(s.charAt(k - 1));
}

/** Replaces the prose-markdown code spans by spaces; a value that is only a span stays as it is. */
function blankMarkdownSpans(s: string): string {
  if (!s.includes('`')) return s;
  const blanked = s.replace(MARKDOWN_SPAN, (m: string, offset: number) => (isProseSpan(s, m, offset) ? ' '.repeat(m.length) : m));
  return blanked.trim() === '' ? s : blanked;
}

/** `{cat,/etc/passwd}` at the start of a command: `{`, a word, `,` — checked around each `{`. */
function braceExpansion(s: string): boolean {
  for (let p = s.indexOf('{'); p !== -1; p = s.indexOf('{', p + 1)) {
    let q = skipSpaces(s, p + 1);
    if (!isLetterCode(s.charCodeAt(q))) continue;
    q++;
    for (let c = s.charCodeAt(q); isWordCode(c) || c === 46 || c === 45; c = s.charCodeAt(++q));
    if (s.charCodeAt(skipSpaces(s, q)) !== 44) continue;
    let k = p;
    while (k > 0 && isSpaceCode(s.charCodeAt(k - 1))) {
      if (s.charCodeAt(k - 1) === 10) return true;
      k--;
    }
    if (k === 0 || ';&|`'.includes(s.charAt(k - 1))) return true;
    if (s.charAt(k - 1) === '(' && s.charAt(k - 2) === '$') return true;
  }
  return false;
}

/** A line whose first and last non-blank characters are two different `|`: a markdown table row. */
function isTableRow(s: string, start: number, end: number): boolean {
  let i = start;
  let k = end;
  while (i < k && isSpaceCode(s.charCodeAt(i))) i++;
  while (k > i && isSpaceCode(s.charCodeAt(k - 1))) k--;
  return k - i >= 2 && s.charCodeAt(i) === 124 && s.charCodeAt(k - 1) === 124;
}

/** Index of `ch` in `s` from `from`, not looking at or past `limit`; -1 if absent. */
function indexBefore(s: string, ch: number, from: number, limit: number): number {
  for (let i = from; i < limit; i++) if (s.charCodeAt(i) === ch) return i;
  return -1;
}

const ANSI_C_ESCAPES: Readonly<Record<string, string>> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', v: '\v' };

/** The content of a `$'...'` string (ANSI-C quoting) with its escapes decoded. */
function ansiC(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body.charAt(i);
    if (c !== '\\' || i + 1 >= body.length) {
      out += c;
      continue;
    }
    const e = body.charAt(++i);
    const hex = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    if (hex > 0) {
      const digits = /^[0-9a-f]+/i.exec(body.slice(i + 1, i + 1 + hex))?.[0] ?? '';
      if (digits === '') out += `\\${e}`;
      else {
        const cp = Number.parseInt(digits, 16);
        out += cp <= 0x10ffff ? String.fromCodePoint(cp) : '';
        i += digits.length;
      }
    } else if (e >= '0' && e <= '7') {
      const digits = /^[0-7]{1,3}/.exec(body.slice(i, i + 3))?.[0] ?? e;
      out += String.fromCharCode(Number.parseInt(digits, 8) & 0xff);
      i += digits.length - 1;
    } else {
      out += ANSI_C_ESCAPES[e] ?? e;
    }
  }
  return out;
}

interface ShellWord {
  /** The word as the shell reads it: quotes removed, escapes decoded, empty expansions dropped. */
  readonly text: string;
  /** Index just after the word. */
  readonly end: number;
  /** Quotes, escapes or expansions were undone: `text` is not what the value shows. */
  readonly obfuscated: boolean;
  /** A value only the shell knows: `$NAME`, `${NAME}`, or `${NAME:0:1}`-style operators. */
  readonly expansion: 'variable' | 'braced' | 'operator' | undefined;
  readonly variable: string | undefined;
}

/** What a command word can start with: a letter, `/`, `_`, a quote, `\`, `$` or `` ` `` (NaN past the end: no). */
function startsWord(c: number): boolean {
  return isLetterCode(c) || c === 47 || c === 95 || c === 39 || c === 34 || c === 92 || c === 36 || c === 96;
}

/** Quoting and expansions that make a word more than its plain prefix: `' " \ $` and `` ` ``. */
function continuesWord(c: number): boolean {
  return c === 39 || c === 34 || c === 92 || c === 36 || c === 96;
}

/** Characters that end an unquoted word: blanks and `; | & < > ( )`. */
function endsWord(c: number): boolean {
  return isSpaceCode(c) || c === 59 || c === 124 || c === 38 || c === 60 || c === 62 || c === 40 || c === 41;
}

/** Reads the shell word starting at `start`, at most MAX_WORD characters of it. */
function readWord(s: string, start: number): ShellWord {
  const limit = Math.min(s.length, start + MAX_WORD);
  let text = '';
  let obfuscated = false;
  // the strongest expansion seen: operator > variable > braced
  let expansion: ShellWord['expansion'];
  let variable: string | undefined;
  let i = start;
  while (i < limit) {
    const c = s.charCodeAt(i);
    if (endsWord(c)) break;
    if (c === 96) {
      // `` (empty substitution) is dropped; `cmd` starts a substitution, a separator of its own
      if (s.charCodeAt(i + 1) !== 96) break;
      obfuscated = true;
      i += 2;
      continue;
    }
    if (c === 39 || c === 34) {
      const close = indexBefore(s, c, i + 1, limit);
      if (close === -1) break;
      const body = s.slice(i + 1, close);
      if (c === 34 && /\$[a-z_{]/i.test(body) && expansion !== 'operator') expansion = 'variable';
      text += c === 34 ? body.replace(/\\(.)/g, '$1') : body;
      obfuscated = true;
      i = close + 1;
      continue;
    }
    if (c === 92) {
      // a backslash quotes the next character; before a newline it joins two lines
      if (i + 1 < limit && s.charCodeAt(i + 1) !== 10) text += s.charAt(i + 1);
      obfuscated = true;
      i += 2;
      continue;
    }
    if (c === 36) {
      const d = s.charCodeAt(i + 1);
      if (d === 39 || d === 34) {
        // $'...' (ANSI-C) and $"..." (locale) strings
        const close = indexBefore(s, d, i + 2, limit);
        if (close === -1) break;
        const body = s.slice(i + 2, close);
        text += d === 39 ? ansiC(body) : body;
        obfuscated = true;
        i = close + 1;
        continue;
      }
      if (d === 40) {
        // $() is empty; $(cmd) starts a substitution, a separator of its own
        if (s.charCodeAt(i + 2) !== 41) break;
        obfuscated = true;
        i += 3;
        continue;
      }
      if (d === 123) {
        const close = indexBefore(s, 125, i + 2, limit);
        if (close === -1) break;
        const inner = s.slice(i + 2, close);
        if (/^[a-z_]\w*$/i.test(inner)) {
          expansion ??= 'braced';
          variable ??= inner;
        } else if (inner !== '' && !/^(?:[@*]|\d+)$/.test(inner)) expansion = 'operator';
        obfuscated = true;
        i = close + 1;
        continue;
      }
      if (d === 64 || d === 42 || (d >= 48 && d <= 57)) {
        // $@ $* $1: empty in `sh -c '...'`
        obfuscated = true;
        i += 2;
        continue;
      }
      if (isLetterCode(d) || d === 95) {
        let k = i + 2;
        while (k < limit && isWordCode(s.charCodeAt(k))) k++;
        if (expansion !== 'operator') expansion = 'variable';
        variable ??= s.slice(i + 1, k);
        obfuscated = true;
        i = k;
        continue;
      }
    }
    text += s.charAt(i);
    i++;
  }
  return { text, end: i, obfuscated, expansion, variable };
}

export function detectCommandInjection(decoded: string): boolean {
  if (!/[;&|\n\r`$/{]/.test(decoded)) return false;
  if (IFS_OR_LOOKUP.test(decoded) || REDIRECT_DEVICE.test(decoded)) return true;

  const s = blankMarkdownSpans(decoded);
  if (GLOB_PATH.test(s) || braceExpansion(s.includes('{') ? s.replace(INWORD_OBFUSCATION, '') : s)) return true;

  const assigned = new Set<string>();
  // the line of the last `|` looked at: whether it is a markdown table row
  let rowEnd = -1;
  let tableRow = false;

  COMMAND_SEPARATOR.lastIndex = 0;
  for (let m = COMMAND_SEPARATOR.exec(s); m !== null; m = COMMAND_SEPARATOR.exec(s)) {
    const separator = m[0];
    let start = m.index + separator.length;
    while (s.charCodeAt(start) === 32 || s.charCodeAt(start) === 9) start++;
    if (!startsWord(s.charCodeAt(start))) continue;

    let name: string;
    let absolutePath: boolean;
    let afterName: number;
    let rest = '';
    // the common case: a plain word (letters, digits, `_ . -`, or an absolute path) that no
    // quoting continues; a name is scanned by hand, a path with the regex
    let plain: { name: string; path: boolean; end: number } | null = null;
    if (isLetterCode(s.charCodeAt(start))) {
      let k = start + 1;
      for (let c = s.charCodeAt(k); isWordCode(c) || c === 46 || c === 45; c = s.charCodeAt(++k));
      plain = { name: s.slice(start, k), path: false, end: k };
    } else if (s.charCodeAt(start) === 47) {
      PLAIN_COMMAND.lastIndex = start;
      const w = PLAIN_COMMAND.exec(s);
      if (w !== null) plain = { name: w[2] as string, path: w[1] !== undefined, end: start + w[0].length };
    }
    const plainEnd = plain === null ? start : plain.end;
    if (plain !== null && !continuesWord(s.charCodeAt(plainEnd))) {
      name = plain.name;
      absolutePath = plain.path;
      afterName = plainEnd;
      if (s.charCodeAt(plainEnd) === 61 && !absolutePath) {
        // `NAME=value`: an assignment, remembered for a later `${NAME}`
        if (assigned.size < MAX_ASSIGNED) assigned.add(name);
        continue;
      }
    } else {
      const word = readWord(s, start);
      const assignment = ASSIGNMENT.exec(word.text);
      if (assignment !== null && assigned.size < MAX_ASSIGNED) assigned.add(assignment[1] as string);
      if (word.expansion !== undefined) {
        // a command the shell builds at run time; a lone `${name}` is a template placeholder
        if (word.expansion !== 'braced' || /[a-z]/i.test(word.text) || assigned.has(word.variable ?? '')) return true;
        continue;
      }
      const w = UNQUOTED_COMMAND.exec(word.text);
      if (w === null) continue;
      name = w[2] as string;
      absolutePath = w[1] !== undefined;
      afterName = word.end;
      rest = word.text.slice(w[0].length);
    }
    const kind = absolutePath ? 'unambiguous' : isCommand(name);
    if (kind === null) continue;
    if (separator === '$(' || separator === '`') {
      // Not a prose span (those were blanked): glued to other text, or the whole value.
      return true;
    }
    if (separator === '|') {
      if (m.index >= rowEnd) {
        const lineStart = s.lastIndexOf('\n', m.index - 1) + 1;
        const lineEnd = s.indexOf('\n', m.index);
        rowEnd = lineEnd === -1 ? s.length : lineEnd;
        tableRow = isTableRow(s, lineStart, rowEnd);
      }
      if (tableRow) continue;
    }

    ARGUMENTS_END.lastIndex = afterName;
    const end = ARGUMENTS_END.exec(s)?.index ?? s.length;
    const args = (rest + s.slice(afterName, end)).trim();
    let firstEnd = 0;
    while (firstEnd < args.length && !isSpaceCode(args.charCodeAt(firstEnd))) firstEnd++;
    const firstArg = args.slice(0, firstEnd);
    const shellishArgument =
      args === ''
        ? false
        : SHELLISH_ARGUMENT.test(firstArg) ||
          (DIGITS.test(firstArg) && firstArg.length === args.length) ||
          REDIRECTION.test(args) ||
          (name.toLowerCase() === 'net' && NET_SUBCOMMAND.test(args));
    const newline = separator === '\n' || separator === '\r';

    if (newline) {
      if (args === '' || shellishArgument) return true;
      continue;
    }
    if (kind === 'unambiguous' || shellishArgument) return true;
    if (args === '') {
      // `& date` at the end of "time & date" is prose; `&date`, `;id`, `| id`, `&& id`, `a & id` are not.
      const spacedAmpersand = separator === '&' && isSpaceCode(s.charCodeAt(m.index + 1)) && isSpaceCode(s.charCodeAt(m.index - 1));
      if (!spacedAmpersand || BARE_COMMANDS.has(name.toLowerCase())) return true;
    }
  }
  return false;
}
