import type { RouteAuthPolicy } from '../config/index.js';
import '../server/route-config.js';

export const PUBLIC: RouteAuthPolicy = Object.freeze({ required: false });
export const READ_ONLY: RouteAuthPolicy = Object.freeze({ required: true, scope: 'read' as const });
