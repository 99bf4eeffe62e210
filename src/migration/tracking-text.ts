import type { MigrationConfig } from '../config/index.js';
import type { MigrationRecord, StepRecord } from './records.js';
import type { SideFigures } from './side-stats.js';

/* What the GitHub tracker writes for a migration: the issue's checklist, the comments, the pull request. */


const pct = (r: number) => `${(r * 100).toFixed(2)}%`;
const fig = (f: SideFigures | undefined) => (f === undefined ? 'n/a' : `${f.requests} requests, ${f.errors} errors (${pct(f.errorRate)}), p99 ${f.p99Ms} ms`);

export const issueMarker = (id: string) => `<!-- unified-gateway-migration:${id} -->`;

/** The issue body: the checklist of steps and gates, ticked as they pass. */
export function issueBody(r: MigrationRecord, gates: MigrationConfig['gates']): string {
  const lines = [
    issueMarker(r.id),
    `Progressive migration \`${r.id}\` of route \`${r.route}\`, started by ${r.createdBy} at ${r.createdAt}.`,
    '',
    `State: **${r.state}**. Steps of at least ${r.stepSeconds} s and ${r.minRequests} canary requests; ${r.autoAdvance ? 'advances by itself' : 'each step needs approve_migration_step'}.`,
    '',
    '### Steps',
    ...r.steps.map((s: StepRecord, i) => `- [${s.status === 'passed' ? 'x' : ' '}] Step ${i + 1}: ${s.percent}% to the canary${s.status !== 'pending' ? ` (${s.status})` : ''}${s.canary ? ` — canary ${fig(s.canary)}; stable ${fig(s.stable)}` : ''}`),
    '',
    '### Gates (each step)',
    `- [${r.state === 'completed' ? 'x' : ' '}] canary error rate under ${pct(gates.maxErrorRate)} and under ${gates.errorRatioToStable}x stable's`,
    `- [${r.state === 'completed' ? 'x' : ' '}] canary p99 under ${gates.maxP99Ms} ms and under ${gates.p99RatioToStable}x stable's (or the Memory baseline)`,
  ];
  if (r.outcome !== undefined) lines.push('', `### Outcome`, r.outcome.reason);
  return lines.join('\n');
}

export function stepComment(r: MigrationRecord, s: StepRecord): string {
  return [`Step ${r.steps.indexOf(s) + 1} (${s.percent}%) passed.`, '', `- canary: ${fig(s.canary)}`, `- stable: ${fig(s.stable)}`, `- reference: ${s.reference ?? 'none'}`].join('\n');
}

export function rollbackComment(r: MigrationRecord, canary: SideFigures, stable: SideFigures, failures: ReadonlyArray<{ message: string; value: number; limit: number }>): string {
  return [
    `**Rolled back** to 0% at step ${r.current + 1} (${r.steps[r.current]!.percent}%): a gate failed.`,
    '',
    ...failures.map((f) => `- ${f.message} (measured ${f.value}, limit ${f.limit})`),
    '',
    `- canary: ${fig(canary)}`,
    `- stable: ${fig(stable)}`,
  ].join('\n');
}

/** The completion pull request's description: the figures of every step. */
export function pullRequestBody(r: MigrationRecord): string {
  return [
    `Completes migration \`${r.id}\` of route \`${r.route}\`: the canary served 100% and passed every gate, so it becomes the stable side.`,
    '',
    '| Step | Canary | Stable |',
    '|---|---|---|',
    ...r.steps.map((s) => `| ${s.percent}% | ${fig(s.canary)} | ${fig(s.stable)} |`),
    '',
    ...(r.legacy !== undefined ? [`The legacy endpoints served through this route are removed from \`legacy:\`: ${r.legacy.removed.join(', ')}.`, ''] : []),
    `Tracking issue: ${r.tracking?.issue?.url ?? 'n/a'}`,
  ].join('\n');
}

/** The configuration change a completed migration proposes: the route served by its former canary, no split. */
export function promotionFile(r: MigrationRecord): string {
  return [
    `# Written by the gateway when migration ${r.id} completed (${r.updatedAt}).`,
    `# Route ${r.route}: the canary served 100% through every gate and becomes the route's service;`,
    '# merge it into the gateway configuration (the split block and the legacy entries this route replaced go away).',
    'routes:',
    `  - id: ${r.route}`,
    `    service: ${r.canaryService ?? '<canary service>'}`,
    `    # was: ${r.stableService ?? '<stable service>'} with a split to ${r.canaryService ?? '<canary service>'}`,
    ...(r.legacy !== undefined
      ? [
          `# The legacy endpoints served through this route are retired: ${r.legacy.removed.join(', ')}.`,
          ...(r.legacy.kept.length === 0 ? ['legacy: []'] : ['legacy:', ...r.legacy.kept.map((e) => `  - { path: ${e.path}, to: ${e.to}, deprecated: "${e.deprecated}", sunset: "${e.sunset}", docs: "${e.docs}" }`)]),
        ]
      : []),
    '',
  ].join('\n');
}
