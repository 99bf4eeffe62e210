/**
 * Dependency audit of the production dependencies (`npm run security`, and `.ci/run`).
 *
 * Runs `npm audit --omit=dev --json`, keeps the advisories at or above `--level` (default high)
 * and fails on every one that `.ci/audit-allowlist.json` does not accept with a reason. npm's own
 * `--audit-level` cannot take an allow-list, hence this thin wrapper; the audit itself is npm's.
 *
 * Exit codes: 0 clean (or only accepted advisories), 1 advisories to fix, 2 bad allow-list or
 * usage, 3 the advisory service could not be asked (a registry mirror without the audit
 * endpoint). `--unavailable=warn` turns 3 into a loud warning and exit 0, for machines whose
 * registry has no advisory endpoint; the default is to fail closed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SEVERITIES = ['info', 'low', 'moderate', 'high', 'critical'] as const;
type Severity = (typeof SEVERITIES)[number];

const allowListSchema = z.strictObject({
  advisories: z.array(
    z.strictObject({
      /** GHSA id (`GHSA-xxxx-xxxx-xxxx`) as in the advisory URL. */
      id: z.string().regex(/^GHSA(-[23456789cfghjmpqrvwx]{4}){3}$/, 'a GHSA id such as GHSA-abcd-efgh-ijkm'),
      package: z.string().min(1),
      reason: z.string().min(20, 'say why the advisory does not apply (at least 20 characters)'),
      /** Date (YYYY-MM-DD) after which the acceptance lapses and the audit fails again. */
      expires: z.iso.date(),
    }),
  ),
});

const viaSchema = z.object({
  source: z.number(),
  name: z.string(),
  title: z.string(),
  url: z.string(),
  severity: z.enum(SEVERITIES),
  range: z.string().optional(),
});
const reportSchema = z.object({
  vulnerabilities: z.record(z.string(), z.object({ via: z.array(z.union([viaSchema, z.string()])) })),
});
const errorReportSchema = z.object({ message: z.string().optional(), error: z.unknown() });

interface Advisory {
  readonly id: string;
  readonly package: string;
  readonly title: string;
  readonly severity: Severity;
  readonly url: string;
}

function ghsaOf(url: string, source: number): string {
  return /GHSA(-[a-z0-9]{4}){3}/i.exec(url)?.[0] ?? `npm-${source}`;
}

/** Every distinct advisory in an `npm audit --json` report (packages only affected through others are skipped). */
function advisoriesOf(report: z.infer<typeof reportSchema>): Advisory[] {
  const seen = new Map<string, Advisory>();
  for (const vulnerability of Object.values(report.vulnerabilities)) {
    for (const via of vulnerability.via) {
      if (typeof via === 'string') continue;
      const id = ghsaOf(via.url, via.source);
      seen.set(`${id} ${via.name}`, { id, package: via.name, title: via.title, severity: via.severity, url: via.url });
    }
  }
  return [...seen.values()];
}

function parseArgs(argv: readonly string[]): { level: Severity; unavailable: 'fail' | 'warn'; allowList: string } {
  let level: Severity = 'high';
  let unavailable: 'fail' | 'warn' = 'fail';
  let allowList = join(ROOT, '.ci/audit-allowlist.json');
  for (const arg of argv) {
    const [key, value = ''] = arg.split('=', 2);
    if (key === '--level' && (SEVERITIES as readonly string[]).includes(value)) level = value as Severity;
    else if (key === '--unavailable' && (value === 'fail' || value === 'warn')) unavailable = value;
    else if (key === '--allow-list' && value !== '') allowList = resolve(value);
    else {
      console.error(`security-audit: unknown argument ${arg} (--level=<${SEVERITIES.join('|')}>, --unavailable=<fail|warn>, --allow-list=<file>)`);
      process.exit(2);
    }
  }
  return { level, unavailable, allowList };
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const parsedList = allowListSchema.safeParse(JSON.parse(readFileSync(args.allowList, 'utf8')));
  if (!parsedList.success) {
    for (const issue of parsedList.error.issues) console.error(`security-audit: ${args.allowList}: ${issue.path.join('.')}: ${issue.message}`);
    process.exit(2);
  }
  const today = new Date().toISOString().slice(0, 10);
  const accepted = new Map(parsedList.data.advisories.filter((a) => a.expires >= today).map((a) => [`${a.id} ${a.package}`, a]));

  const audit = spawnSync('npm', ['audit', '--omit=dev', '--json'], { cwd: process.cwd(), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  let json: unknown;
  try {
    json = JSON.parse(audit.stdout);
  } catch {
    json = undefined;
  }
  const report = reportSchema.safeParse(json);
  if (!report.success) {
    const failure = errorReportSchema.safeParse(json);
    const why = failure.success ? (failure.data.message ?? 'npm audit failed') : (audit.stderr.trim().split('\n').at(-1) ?? 'npm audit failed');
    const line = `security-audit: the advisory service could not be asked: ${why}`;
    if (args.unavailable === 'warn') {
      console.warn(`WARNING ${line}\nWARNING no dependency audit was done on this machine (--unavailable=warn)`);
      process.exit(0);
    }
    console.error(line);
    process.exit(3);
  }

  const threshold = SEVERITIES.indexOf(args.level);
  const relevant = advisoriesOf(report.data).filter((a) => SEVERITIES.indexOf(a.severity) >= threshold);
  const open = relevant.filter((a) => !accepted.has(`${a.id} ${a.package}`));
  for (const a of relevant) {
    const acceptance = accepted.get(`${a.id} ${a.package}`);
    const status = acceptance ? `accepted until ${acceptance.expires}: ${acceptance.reason}` : 'OPEN';
    console.log(`${a.severity.padEnd(8)} ${a.package} ${a.id} ${a.title} (${a.url}) - ${status}`);
  }
  console.log(`security-audit: ${relevant.length} advisories at ${args.level} or above in production dependencies, ${open.length} open`);
  process.exit(open.length === 0 ? 0 : 1);
}

main();
