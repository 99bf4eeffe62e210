export { accessRefusal, adminAccessPolicy } from './access.js';
export {
  BlockedClientsService,
  blockClientInput,
  blockedClientSchema,
  clientParamSchema,
  listBlockedClientsOutput,
  unblockClientInput,
  type BlockClientInput,
  type BlockedClient,
} from './blocked-clients.js';
export { adminRoutes, type AdminRoutesOptions } from './routes.js';
export {
  activateModelInput,
  routingAdminRoutes,
  RoutingModelsService,
  shadowModelInput,
  type RoutingAdminRoutesOptions,
} from './routing-models.js';
export {
  listMcpServersOutput,
  McpServerAdminError,
  McpServersService,
  restartMcpServerInput,
  restartMcpServerOutput,
  type McpServersSource,
} from './mcp-servers-service.js';
