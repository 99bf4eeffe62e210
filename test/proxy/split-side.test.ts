import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../src/config/index.js';
import { splitRouteOf } from '../../src/proxy/split-side.js';

const split = { canaryService: 'twin-canary', weights: { stable: 90, canary: 10 }, sticky: 'principal' };
const route = (id: string, service: string, withSplit: boolean) => ({ id, prefix: `/v1/${id}`, service, ...(withSplit ? { split } : {}) }) as unknown as RouteConfig;

describe('the split an ML-routed request takes (splitRouteOf)', () => {
  it("is the split of the service's one route with a split, whatever its id", () => {
    const routes = [route('agents', 'agent-controller', true), route('twin', 'twin', false)];
    expect(splitRouteOf('agent-controller', routes)).toEqual({ route: routes[0], ambiguous: [] });
    expect(splitRouteOf('twin', routes)).toEqual({ ambiguous: [] });
    expect(splitRouteOf('fog', routes)).toEqual({ ambiguous: [] });
  });

  it('with several split routes, the one whose id is the service name; otherwise none, naming them', () => {
    const routes = [route('public-twin', 'twin', true), route('twin', 'twin', true), route('beta', 'knowledge', true), route('docs', 'knowledge', true)];
    expect(splitRouteOf('twin', routes).route?.id).toBe('twin');
    expect(splitRouteOf('knowledge', routes)).toEqual({ ambiguous: ['beta', 'docs'] });
  });
});
