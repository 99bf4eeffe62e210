import { describe, expect, it } from 'vitest';
import { isNewer } from '../../src/state/order.js';

describe('isNewer (the order of replicated changes)', () => {
  it('a higher version wins whatever the times say (clock skew between replicas)', () => {
    expect(isNewer({ version: 3, at: '2026-01-01T00:00:00.000Z', tie: 'a' }, { version: 2, at: '2026-12-01T00:00:00.000Z', tie: 'b' })).toBe(true);
    expect(isNewer({ version: 2, at: '2026-12-01T00:00:00.000Z', tie: 'b' }, { version: 3, at: '2026-01-01T00:00:00.000Z', tie: 'a' })).toBe(false);
  });

  it('the same version: the later time wins; an unstamped (configured) value loses to any change', () => {
    expect(isNewer({ at: '2026-12-06T08:00:00.001Z', tie: 'x' }, { at: '2026-12-06T08:00:00.000Z', tie: 'y' })).toBe(true);
    expect(isNewer({ at: '2026-12-06T08:00:00.000Z', tie: 'y' }, { at: '2026-12-06T08:00:00.001Z', tie: 'x' })).toBe(false);
    expect(isNewer({ at: '2026-12-06T08:00:00.000Z', tie: 'y' }, { at: '', tie: 'x' })).toBe(true);
  });

  it('two changes crossing in the same millisecond: exactly one of them wins, on every replica', () => {
    const a = { version: 5, at: '2026-12-06T08:00:00.000Z', tie: 'rm-a' };
    const b = { version: 5, at: '2026-12-06T08:00:00.000Z', tie: 'rm-b' };
    expect(isNewer(a, b)).not.toBe(isNewer(b, a));
    expect(isNewer(a, a)).toBe(false);
  });
});
