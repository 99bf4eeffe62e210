/** The gateway's version, as the CLI and the MCP server report it (kept equal to package.json by a test). */
export const GATEWAY_VERSION = '0.1.0';
