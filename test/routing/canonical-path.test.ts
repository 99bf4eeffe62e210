import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../src/config/index.js';
import { canonicalTarget, loosestReading, NFKC_SEPARATOR_OR_DOT, PathGuard } from '../../src/routing/canonical-path.js';

const route = (id: string, prefix: string, extra: Partial<RouteConfig> = {}): RouteConfig => ({
  id,
  prefix,
  service: 'legacy',
  methods: null,
  auth: { required: true },
  validation: 'strict',
  textFields: [],
  freeTextFields: [],
  ...extra,
});

describe('canonical request target', () => {
  // [raw target, canonical url]
  const accepted: Array<[string, string]> = [
    ['/v1/legacyapp/users', '/v1/legacyapp/users'],
    ['/v1/legacyapp/users?limit=5&q=a%20b', '/v1/legacyapp/users?limit=5&q=a%20b'],
    // unreserved escapes decoded, in any case
    ['/v1/legacyapp/%61dmin', '/v1/legacyapp/admin'],
    ['/v1/legacyapp/%41%44%4D%49%4E', '/v1/legacyapp/ADMIN'],
    ['/v1/%7euser/a%2db%5fc%2E', '/v1/~user/a-b_c.'],
    // other escapes kept, hex uppercased
    ['/v1/docs/a%20b%3fc%23d%25e', '/v1/docs/a%20b%3Fc%23d%25e'],
    ['/v1/docs/O%27Reilly', '/v1/docs/O%27Reilly'],
    // characters not allowed raw in a path are encoded
    ['/v1/docs/a"b<c>d{e}f|g^h`i', '/v1/docs/a%22b%3Cc%3Ed%7Be%7Df%7Cg%5Eh%60i'],
    // empty segments collapse, a trailing slash stays
    ['//v1//legacyapp///admin', '/v1/legacyapp/admin'],
    ['/v1/legacyapp/admin/', '/v1/legacyapp/admin/'],
    ['/v1/legacyapp/admin//', '/v1/legacyapp/admin/'],
    ['//', '/'],
    ['/', '/'],
    // valid UTF-8 stays encoded (uppercase)
    ['/v1/twin/caf%c3%a9', '/v1/twin/caf%C3%A9'],
    ['/v1/docs/%E6%97%A5%E6%9C%AC', '/v1/docs/%E6%97%A5%E6%9C%AC'],
    ['/v1/docs/%F0%9F%98%80', '/v1/docs/%F0%9F%98%80'],
    // a single %25 is data (what a %25 hides is checked: see `separators`)
    ['/v1/docs/100%25', '/v1/docs/100%25'],
    ['/v1/docs/a%25b', '/v1/docs/a%25b'],
    // segments that start with a dot but are not dot segments
    ['/.well-known/x', '/.well-known/x'],
    ['/v1/docs/...', '/v1/docs/...'],
    ['/v1/docs/.hidden/..x', '/v1/docs/.hidden/..x'],
    // absolute-form: only the path and query are kept
    ['http://evil.example/v1/legacyapp/x?y=1', '/v1/legacyapp/x?y=1'],
    ['HTTPS://user:pw@evil.example:8443/v1/a', '/v1/a'],
    ['http://evil.example', '/'],
    ['http://evil.example?q=1', '/?q=1'],
    // _method removed from the query, other parameters kept as sent
    ['/v1/x?_method=DELETE', '/v1/x'],
    ['/v1/x?a=1&_METHOD=delete&b=2', '/v1/x?a=1&b=2'],
    ['/v1/x?a=1&%5Fmethod=PUT', '/v1/x?a=1'],
    ['/v1/x?_method%5B%5D=PUT&z', '/v1/x?z'],
    ['/v1/x?my_method=1&method=2', '/v1/x?my_method=1&method=2'],
  ];
  it.each(accepted)('%s -> %s', (raw, url) => {
    const t = canonicalTarget(raw);
    expect(t.problem).toBeUndefined();
    expect(t.url).toBe(url);
    expect(t.encodedSlash).toBe(false);
  });

  const refused: Array<[string, RegExp]> = [
    ['/v1/legacyapp/./admin', /dot segment/],
    ['/v1/legacyapp/x/../admin', /dot segment/],
    ['/v1/legacyapp/%2e%2e/admin', /dot segment/],
    ['/v1/legacyapp/%2E/admin', /dot segment/],
    ['/v1/legacyapp/.%2e/admin', /dot segment/],
    ['/..', /dot segment/],
    ['/v1/legacyapp/..;x=1/admin', /dot segment/],
    ['/v1/legacyapp/%252e%252e/admin', /dot segment/],
    ['/v1/legacyapp/%25252e%25252e/admin', /dot segment/],
    ['/v1/docs/%E2%80%A5/etc', /dot segment/], // U+2025, NFKC ".."
    ['/v1/files/x%2F..%2Fprivate', /dot segment/], // dot segments hidden behind an encoded separator
    ['/v1/files/x%5C.%5Cprivate', /dot segment/],
    ['/v1/files/%252E%252E%252Fprivate', /dot segment/],
    ['/v1/files/x%2F..;v=1%2Fprivate', /dot segment/],
    ['/v1/files/%EF%BC%8E%EF%BC%8E', /dot segment/], // fullwidth "..", NFKC ".."
    ['/v1/legacyapp\\admin', /backslash/],
    ['/v1/legacyapp/a%00b', /control/],
    ['/v1/legacyapp/a%0d%0ab', /control/],
    ['/v1/legacyapp/a%7Fb', /control/],
    ['/v1/legacyapp/a%2500b', /control/],
    ['/v1/legacyapp/a%zzb', /malformed/],
    ['/v1/legacyapp/a%2', /malformed/],
    ['/v1/legacyapp/%c0%af', /UTF-8/], // overlong "/"
    ['/v1/legacyapp/%e0%80%af', /UTF-8/], // overlong "/", three bytes
    ['/v1/legacyapp/%ed%a0%80', /UTF-8/], // a surrogate
    ['/v1/legacyapp/%c3', /UTF-8/], // truncated
    ['/v1/legacyapp/%c3x', /UTF-8/],
    ['/v1/legacyapp/%80', /UTF-8/],
    ['/v1/legacyapp/a%252525252Fb', /too many/],
    ['/v1/x#frag', /fragment/],
    ['*', /not a path/],
    ['ftp://evil.example/v1/x', /not a path/],
    ['v1/x', /not a path/],
  ];
  it.each(refused)('%s is refused', (raw, reason) => {
    const t = canonicalTarget(raw);
    expect(t.problem).toMatch(reason);
  });

  const separators: Array<[string, string]> = [
    ['/v1/legacyapp/admin%2fusers', '/v1/legacyapp/admin%2Fusers'],
    ['/v1/legacyapp/admin%2Fusers', '/v1/legacyapp/admin%2Fusers'],
    ['/v1/legacyapp/admin%5cusers', '/v1/legacyapp/admin%5Cusers'],
    ['/v1/legacyapp/admin%5Cusers', '/v1/legacyapp/admin%5Cusers'],
    ['/v1/legacyapp/admin%252fusers', '/v1/legacyapp/admin%252fusers'],
    ['/v1/legacyapp/admin%25255cusers', '/v1/legacyapp/admin%25255cusers'],
    ['/v1/legacyapp/admin%EF%BC%8Fusers', '/v1/legacyapp/admin%EF%BC%8Fusers'], // U+FF0F fullwidth solidus
  ];
  it.each(separators)('%s keeps its encoded separator and is flagged', (raw, url) => {
    const t = canonicalTarget(raw);
    expect(t.problem).toBeUndefined();
    expect(t.encodedSlash).toBe(true);
    expect(t.url).toBe(url);
  });

  it('flags ; parameters and keeps them', () => {
    expect(canonicalTarget('/v1/legacyapp/admin;x=1')).toMatchObject({ url: '/v1/legacyapp/admin;x=1', semicolon: true });
    expect(canonicalTarget('/v1/legacyapp/admin%3bx=1')).toMatchObject({ url: '/v1/legacyapp/admin%3Bx=1', semicolon: false });
    expect(canonicalTarget('/v1/x?a=1;b=2').semicolon).toBe(false);
  });

  it('is idempotent: a canonical target is its own canonical form', () => {
    for (const [raw] of [...accepted, ...separators]) {
      const once = canonicalTarget(raw).url;
      expect(canonicalTarget(once).url).toBe(once);
    }
  });

  it('returns a plain path unchanged (same string)', () => {
    const raw = '/v1/twin/conversations/42?limit=5';
    expect(canonicalTarget(raw).url).toBe(raw);
  });

  it('takes time linear in the target length (50x longer: far under the 2500x of quadratic work)', () => {
    // The least of several runs: what the code costs, not what the machine was doing meanwhile.
    const time = (raw: string) => {
      let best = Infinity;
      for (let run = 0; run < 7; run++) {
        const start = performance.now();
        for (let i = 0; i < 3; i++) canonicalTarget(raw);
        best = Math.min(best, performance.now() - start);
      }
      return best;
    };
    const shapes = (n: number) => [`/${'%2525'.repeat(n)}`, `/${'a/'.repeat(n)}`, `/${'%C3%A9'.repeat(n)}`, `/${'/'.repeat(n)}`, `/x?${'_method=1&'.repeat(n)}`, `/${';'.repeat(n)}`, `/${'x%2F'.repeat(n)}`];
    for (const raw of shapes(1000)) time(raw);
    const small = shapes(2_000);
    const large = shapes(100_000);
    small.forEach((s, i) => {
      // Linear is ~50x; the margin absorbs a loaded machine (2 shared cores), not a quadratic pass.
      const ratio = time(large[i]!) / Math.max(time(s), 0.05);
      expect(ratio, s.slice(0, 12)).toBeLessThan(250);
    });
  });
});

describe('Unicode folding', () => {
  it('knows every character whose NFKC form holds / \\ . or ; (recomputed from the Unicode tables)', () => {
    const missing: string[] = [];
    for (let cp = 0x80; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const ch = String.fromCodePoint(cp);
      const folded = ch.normalize('NFKC');
      if (folded !== ch && /[/\\.;]/.test(folded) && !NFKC_SEPARATOR_OR_DOT.test(ch)) missing.push(cp.toString(16));
    }
    expect(missing).toEqual([]);
  });
});

describe('loosest reading', () => {
  it('decodes, folds, drops parameters and lowercases', () => {
    expect(loosestReading('/v1/legacyapp/ADMIN')).toBe('/v1/legacyapp/admin');
    expect(loosestReading('/v1/legacyapp/admin;x=1/users')).toBe('/v1/legacyapp/admin/users');
    expect(loosestReading('/v1/legacyapp/admin%2Fusers')).toBe('/v1/legacyapp/admin/users');
    expect(loosestReading('/v1/legacyapp/admin%5Cusers')).toBe('/v1/legacyapp/admin/users');
    expect(loosestReading('/v1/legacyapp/x%252F%252Fadmin')).toBe('/v1/legacyapp/x/admin');
    expect(loosestReading('/v1/legacyapp/%EF%BD%81dmin')).toBe('/v1/legacyapp/admin'); // fullwidth a
  });

  it('reads segments as Windows and lenient servers do: trailing dots and spaces, NTFS streams, ignorable characters, a decoded ? or #', () => {
    expect(loosestReading('/v1/legacyapp/admin.')).toBe('/v1/legacyapp/admin');
    expect(loosestReading('/v1/legacyapp/admin...%20./users')).toBe('/v1/legacyapp/admin/users');
    expect(loosestReading('/v1/legacyapp/admin%C2%A0')).toBe('/v1/legacyapp/admin'); // no-break space, NFKC a space
    expect(loosestReading('/v1/legacyapp/admin%E3%80%80')).toBe('/v1/legacyapp/admin'); // ideographic space
    expect(loosestReading('/v1/legacyapp/admin::$DATA')).toBe('/v1/legacyapp/admin');
    expect(loosestReading('/v1/legacyapp/admin:$DATA/x')).toBe('/v1/legacyapp/admin/x');
    expect(loosestReading('/v1/legacyapp/ad%E2%80%8Bmin')).toBe('/v1/legacyapp/admin'); // zero-width space
    expect(loosestReading('/v1/legacyapp/admin%3Fx=1')).toBe('/v1/legacyapp/admin');
    expect(loosestReading('/v1/legacyapp/admin%2523frag')).toBe('/v1/legacyapp/admin');
    expect(loosestReading('/v1/legacyapp/notes/2024-01-01T10:00')).toBe('/v1/legacyapp/notes/2024-01-01t10:00');
  });
});

describe('path guard', () => {
  const admin = route('legacy-admin', '/v1/legacyapp/admin', { auth: { required: true, scope: 'admin' } });
  const legacy = route('legacy', '/v1/legacyapp', { auth: { required: true, scope: 'read' } });
  const files = route('files', '/v1/files', { allowEncodedSlashes: true, allowSemicolons: true });
  const filesAdmin = route('files-admin', '/v1/files/admin');
  const twin = route('twin', '/v1/twin');
  const guard = new PathGuard([admin, legacy, files, filesAdmin, twin]);
  const check = (raw: string, r: RouteConfig | undefined) => guard.refusal(canonicalTarget(raw), r);

  it('refuses what a lenient server reads as a more specific route: trailing dots or spaces, streams, an extension, a decoded ?', () => {
    for (const raw of ['/v1/legacyapp/admin.', '/v1/legacyapp/admin%20', '/v1/legacyapp/admin%2e', '/v1/legacyapp/admin%C2%A0', '/v1/legacyapp/admin::$DATA', '/v1/legacyapp/admin.json', '/v1/legacyapp/ADMIN.JSON', '/v1/legacyapp/admin%3F', '/v1/legacyapp/admin%23', '/v1/legacyapp/adm%E2%80%8Bin', '/v1/legacyapp/Admin%2E%2Ejson']) {
      expect(check(raw, legacy), raw).toMatch(/reads as one of route legacy-admin/);
    }
    for (const raw of ['/v1/legacyapp/administrator', '/v1/legacyapp/admins.json', '/v1/legacyapp/x/admin.json', '/v1/legacyapp/report.pdf']) {
      expect(check(raw, legacy), raw).toBeUndefined();
    }
  });

  it('refuses encoded separators and ; unless the route opts in', () => {
    expect(check('/v1/legacyapp/admin%2Fusers', legacy)).toMatch(/encoded/);
    expect(check('/v1/legacyapp/a;b', legacy)).toMatch(/;/);
    expect(check('/v1/files/a%2Fb', files)).toBeUndefined();
    expect(check('/v1/files/a;v=2', files)).toBeUndefined();
    expect(check('/admin%2Fx', undefined)).toMatch(/encoded/);
  });

  it('refuses a path another reading of which belongs to a route below the matched one', () => {
    expect(check('/v1/legacyapp/ADMIN', legacy)).toMatch(/legacy-admin/);
    expect(check('/v1/legacyapp/Admin/users', legacy)).toMatch(/legacy-admin/);
    expect(check('/v1/legacyapp/%EF%BD%81dmin', legacy)).toMatch(/legacy-admin/);
    // opted in, and still never a way into the route below
    expect(check('/v1/files/admin%2Fx', files)).toMatch(/files-admin/);
    expect(check('/v1/files/admin;v=1/x', files)).toMatch(/files-admin/);
    expect(check('/v1/files/ADMIN', files)).toMatch(/files-admin/);
  });

  it('accepts what reads the same either way', () => {
    expect(check('/v1/legacyapp/users', legacy)).toBeUndefined();
    expect(check('/v1/legacyapp/administrators', legacy)).toBeUndefined();
    expect(check('/v1/legacyapp/admin/users', admin)).toBeUndefined();
    expect(check('/v1/twin/ADMIN', twin)).toBeUndefined();
    expect(guard.hasRoutesBelow(twin)).toBe(false);
    expect(guard.hasRoutesBelow(legacy)).toBe(true);
  });
});
