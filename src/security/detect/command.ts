/**
 * Shell command injection: a shell metacharacter that starts a new command (`;`, `|`, `||`,
 * `&`, `&&`, a newline, `` ` ``, `$(`) followed by a known command, plus the obfuscations that
 * only make sense to a shell (`${IFS}`, `{cat,/etc/passwd}`, `c'a't`, `/???/??t`, `${jndi:`).
 *
 * Prose uses the same metacharacters ("cats; dogs", "rock & roll", "pros | cons"), so a command
 * name alone is not enough for words that are also English ("cat", "find", "sleep", "type"):
 * for those the argument must look like shell (a flag, a path, a URL, an IP, a redirection, a
 * quote, `$`), or the command must stand alone in a way prose does not (`;id;`, `| id`).
 * Commands that are not words ("whoami", "wget", "chmod") count with any argument.
 *
 * Markdown is prose: a code span surrounded by spaces inside a longer sentence ("run `ls -la`
 * to see hidden files") is not read as command substitution, and `|` on a markdown table row is
 * a cell separator. (Residual risk, accepted: a shell that received such a sentence would run
 * the span; the services behind the gateway take natural language, not shell.)
 */

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
/** `net user`, `net localgroup`: Windows account commands whose argument is a plain word. */
const NET_SUBCOMMAND = /^(?:user|localgroup|group|use|view|share|start|stop|session|accounts)\b/i;

/** Where a new command can start, the optional path before its name, and the name. */
const COMMAND_POSITION = /(\$\(|`|\|\||&&|[;|&\n\r])[ \t]*((?:\/[\w.-]+)*\/)?([a-z][\w.-]*)/gi;
const SHELLISH_ARGUMENT =
  /^(?:-{1,2}[a-z0-9]|[/~.$<>'"{*@%]|\d{1,3}(?:\.\d{1,3}){3}|[\w.-]+\.[a-z]{2,6}(?:[/:?]|$)|[a-z][\w+.-]*:\/\/|[a-z]:\\|\+x$)/i;
const DIGITS = /^\d+$/;

const IFS_OR_LOOKUP = /\$\{?IFS\b|\$\{(?:jndi|env|sys|java|lower|upper|date|::-)[:}]/i;
const BRACE_EXPANSION = /(?:^|[;&|\n`]|\$\()\s*\{\s*[a-z][\w.-]*\s*,/i;
/** `/???/??t`: wildcards standing for a path (no overlapping quantifiers, so linear). */
const GLOB_PATH = /\/[\w*]{0,64}\?[\w?*]{0,64}\/[\w*/]{0,64}\?/;
const REDIRECT_DEVICE = />&?\s*\/dev\/(?:tcp|udp)\//i;
/** Quotes and backslashes inside a word are removed by the shell: `c'a't`, `w"h"oami`, `c\at`. */
const INWORD_OBFUSCATION = /(?<=[a-z])(?:''|""|['"\\])(?=[a-z])/gi;
/** A markdown code span with whitespace (or line start/end, or light punctuation) around it. */
const MARKDOWN_SPAN = /(?<=^|[\s(])`[^`\n]+`(?=$|[\s.,!?:;)-])/g;
const MARKDOWN_TABLE_ROW = /^\s*\|.*\|\s*$/;
const SEPARATOR = /[;&|\n\r`]/g;

function isCommand(name: string): 'unambiguous' | 'ambiguous' | null {
  const lower = name.toLowerCase();
  if (UNAMBIGUOUS.has(lower)) return 'unambiguous';
  if (AMBIGUOUS.has(lower)) return 'ambiguous';
  return null;
}

function lineAt(s: string, index: number): string {
  const start = s.lastIndexOf('\n', index - 1) + 1;
  const end = s.indexOf('\n', index);
  return s.slice(start, end === -1 ? s.length : end);
}

/** Replaces the prose-markdown code spans by spaces; a value that is only a span stays as it is. */
function blankMarkdownSpans(s: string): string {
  if (!s.includes('`')) return s;
  const blanked = s.replace(MARKDOWN_SPAN, (m) => ' '.repeat(m.length));
  return blanked.trim() === '' ? s : blanked;
}

export function detectCommandInjection(decoded: string): boolean {
  if (!/[;&|\n\r`$/{]/.test(decoded)) return false;
  if (IFS_OR_LOOKUP.test(decoded) || REDIRECT_DEVICE.test(decoded)) return true;

  const s = blankMarkdownSpans(decoded.replace(INWORD_OBFUSCATION, ''));
  if (BRACE_EXPANSION.test(s) || GLOB_PATH.test(s)) return true;

  COMMAND_POSITION.lastIndex = 0;
  for (let m = COMMAND_POSITION.exec(s); m !== null; m = COMMAND_POSITION.exec(s)) {
    const separator = m[1] ?? '';
    const pathPrefix = m[2];
    const name = m[3] ?? '';
    const kind = pathPrefix !== undefined ? 'unambiguous' : isCommand(name);
    if (kind === null) continue;
    if (separator === '$(') return true;
    if (separator === '`') {
      // Not a prose span (those were blanked): glued to other text, or the whole value.
      return true;
    }
    if (separator === '|' && MARKDOWN_TABLE_ROW.test(lineAt(s, m.index))) continue;

    const afterName = m.index + m[0].length;
    SEPARATOR.lastIndex = afterName;
    const end = SEPARATOR.exec(s)?.index ?? s.length;
    const args = s.slice(afterName, end).trim();
    const firstArg = args.split(/\s+/, 1)[0] ?? '';
    const shellishArgument =
      args === ''
        ? false
        : SHELLISH_ARGUMENT.test(firstArg) ||
          (DIGITS.test(firstArg) && firstArg.length === args.length) ||
          (name.toLowerCase() === 'net' && NET_SUBCOMMAND.test(args));
    const newline = separator === '\n' || separator === '\r';

    if (newline) {
      if (args === '' || shellishArgument) return true;
      continue;
    }
    if (kind === 'unambiguous' || shellishArgument) return true;
    if (args === '') {
      // `& date` at the end of "time & date" is prose; `&date`, `;id`, `| id`, `&& id` are not.
      const spacedAmpersand = separator === '&' && /\s/.test(s.charAt(m.index + 1)) && /\s/.test(s.charAt(m.index - 1));
      if (!spacedAmpersand) return true;
    }
  }
  return false;
}
