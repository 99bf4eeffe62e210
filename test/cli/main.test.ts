import { describe, expect, it } from 'vitest';
import { buildCli } from '../../src/cli/main.js';

/** Run the CLI's parser in-process on `argv`; what it printed and how it would have exited. */
async function parse(argv: string[]): Promise<{ code: string; out: string }> {
  const program = buildCli();
  let out = '';
  const capture = (p: typeof program) => {
    p.exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
    for (const sub of p.commands) capture(sub);
  };
  capture(program);
  try {
    await program.parseAsync(['node', 'unified-gateway', ...argv]);
    return { code: 'ok', out };
  } catch (err) {
    return { code: (err as { code?: string }).code ?? String(err), out };
  }
}

describe('unified-gateway CLI', () => {
  it('lists its commands', async () => {
    const { code, out } = await parse(['--help']);
    expect(code).toBe('commander.helpDisplayed');
    for (const command of ['serve', 'demo', 'stand-in', 'config', 'model', 'mcp']) expect(out).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('says which option is missing and marks required options in the help', async () => {
    const missing = await parse(['model', 'eval']);
    expect(missing.code).toBe('commander.missingMandatoryOptionValue');
    expect(missing.out).toContain("required option '--data <file>' not specified");
    const help = await parse(['model', 'eval', '--help']);
    expect(help.out).toMatch(/--data <file>\s+\(required\)/);
  });

  it('refuses an unknown command with the help', async () => {
    const { code, out } = await parse(['serv']);
    expect(code).toBe('commander.unknownCommand');
    expect(out).toContain('(Did you mean serve?)');
  });
});
