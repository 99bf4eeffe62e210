import { z } from 'zod';

/*
 * The order of the state changes replicas exchange (routing-model choices, traffic weights,
 * blocks, migrations): every change carries a stamp and the newest stamp wins everywhere, in
 * broadcasts, in what is read back from the store and at start-up. Comparing stamps instead
 * of values is what keeps a late or replayed message from undoing a newer change.
 */

/** An ISO-8601 UTC time as `Date#toISOString` writes it: these compare correctly as strings. */
export const isoTime = z.iso.datetime();

export interface Stamp {
  /** A counter bumped by each change of the same thing, when there is one (0 otherwise). */
  readonly version?: number;
  /** When the change was made (ISO time); '' for "before any runtime change" (configured values). */
  readonly at: string;
  /** Breaks ties between two changes made in the same millisecond on two replicas (e.g. a model id). */
  readonly tie: string;
}

/** True when `candidate` was made after `current`: version first, then time, then the tie-breaker. */
export function isNewer(candidate: Stamp, current: Stamp): boolean {
  const cv = candidate.version ?? 0;
  const v = current.version ?? 0;
  if (cv !== v) return cv > v;
  if (candidate.at !== current.at) return candidate.at > current.at;
  return candidate.tie > current.tie;
}
