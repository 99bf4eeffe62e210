import { z } from 'zod';

/*
 * Checks that span several keys run in the same pass as the shape checks, so one `config
 * check` names every problem. zod runs them even when other keys failed their own schema; a
 * check then reads only the keys that parsed, and names the key of each problem it finds.
 */

type Path = readonly PropertyKey[];
type Issue = z.core.$ZodRawIssue;

/** Problems that say nothing about the value at a path: an unknown key is dropped, its siblings stand. */
const isUnknownKey = (issue: Issue) => issue.code === 'unrecognized_keys';

function startsWith(path: Path, prefix: Path): boolean {
  return prefix.length <= path.length && prefix.every((part, i) => path[i] === part);
}

/** Cross-field checks over the parsed input (`superRefine` with `when: () => true`), rooted at a path. */
export class Checker {
  readonly #ctx: z.core.$RefinementCtx<unknown>;
  readonly #base: Path;

  constructor(ctx: z.core.$RefinementCtx<unknown>, base: Path = []) {
    this.#ctx = ctx;
    this.#base = base;
  }

  /** The same checks, relative to `path`. */
  at(...path: PropertyKey[]): Checker {
    return new Checker(this.#ctx, [...this.#base, ...path]);
  }

  /** The value at `path` parsed as a whole: no problem at it, above it or inside it. */
  valid(...path: PropertyKey[]): boolean {
    const at = [...this.#base, ...path];
    return !this.#issues().some((issue) => {
      const where = issue.path ?? [];
      return startsWith(at, where) || startsWith(where, at);
    });
  }

  /** The value at `path` parsed as a container (object, array, record); its entries may not have. */
  readable(...path: PropertyKey[]): boolean {
    const at = [...this.#base, ...path];
    return !this.#issues().some((issue) => startsWith(at, issue.path ?? []));
  }

  /** One problem, named after the key at `path`. */
  problem(path: PropertyKey[], message: string): void {
    // `input` left out: the checked value is the whole input, secrets included.
    this.#ctx.addIssue({ code: 'custom', path: [...this.#base, ...path], message, input: undefined });
  }

  #issues(): Issue[] {
    return this.#ctx.issues.filter((issue) => !isUnknownKey(issue));
  }
}

/** Only a parsed object is checked (a value of the wrong type is already a problem). */
const isObject = (payload: z.core.ParsePayload) => typeof payload.value === 'object' && payload.value !== null;

/**
 * A check over several keys of one object (`.check(crossCheck(...))`): it runs even when some
 * keys did not parse (zod would skip it then, and report it only on the next run), reads only
 * the keys `c` says parsed, and names each problem after its key.
 */
export function crossCheck<T>(fn: (value: T, c: Checker) => void): z.core.$ZodCheck<T> {
  return z.superRefine<T>((value, ctx) => fn(value, new Checker(ctx as z.core.$RefinementCtx<unknown>)), { when: isObject });
}

/**
 * Options of a `.refine()` comparing some keys of one object: it runs whenever those keys
 * parsed, even when a sibling did not, and its problem is named after `path`.
 */
export function comparing<K extends string>(keys: readonly K[], path: K[] | [], message: string) {
  return {
    path,
    message,
    when: (payload: z.core.ParsePayload) =>
      isObject(payload) &&
      !payload.issues.some((issue) => {
        if (isUnknownKey(issue)) return false;
        const first = issue.path?.[0];
        return first === undefined || (keys as readonly PropertyKey[]).includes(first);
      }),
  };
}
