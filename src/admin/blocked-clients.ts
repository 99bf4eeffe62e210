import { z } from 'zod';
import { clientKey, isClientKey } from '../ratelimit/client-key.js';
import type { ActiveBlock, ThreatDetector } from '../ratelimit/threat.js';

/*
 * The admin service for blocked clients: one implementation behind the REST endpoints
 * (src/admin/routes.ts) and, later, the MCP tools. Inputs and outputs are zod schemas, the
 * single source of their types (and of the MCP tools' input schemas).
 */

/** A client as the admin gives it: an IPv4/IPv6 address or a client key ("2001:db8:1:2::/64"). */
export const clientParamSchema = z
  .string()
  .min(2)
  .max(64)
  .transform((v) => clientKey(v.trim().toLowerCase()))
  .refine(isClientKey, 'an IPv4 or IPv6 address, or an IPv6 /64 client key such as 2001:db8:1:2::/64');

export const blockedClientSchema = z.object({
  client: z.string().describe('Client key: the IPv4 address, or the IPv6 /64'),
  reason: z.string().describe('Signal that tipped the client over (input_rejected, auth_failed, not_found, rate_limited) or "admin: ..."'),
  strikes: z.number().int().describe('Automatic blocks within the strike memory, this one included (0: manual)'),
  blockedAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
  retryAfterSeconds: z.number().int(),
});
export type BlockedClient = z.infer<typeof blockedClientSchema>;

export const listBlockedClientsOutput = z.object({
  clients: z.array(blockedClientSchema),
  /** Whether the list comes from the shared store (all replicas) or only this replica (Redis away). */
  shared: z.boolean(),
});

export const blockClientInput = z.strictObject({
  client: clientParamSchema,
  seconds: z.number().int().min(1).max(30 * 86_400),
  reason: z.string().min(1).max(160),
});
export type BlockClientInput = z.input<typeof blockClientInput>;

export const unblockClientInput = z.strictObject({ client: clientParamSchema });

function view(block: ActiveBlock, now = Date.now()): BlockedClient {
  return {
    client: block.info.client,
    reason: block.info.reason,
    strikes: block.info.strikes,
    blockedAt: new Date(block.info.blockedAt).toISOString(),
    expiresAt: new Date(now + block.retryAfterSeconds * 1000).toISOString(),
    retryAfterSeconds: block.retryAfterSeconds,
  };
}

export class BlockedClientsService {
  constructor(
    private readonly threats: ThreatDetector,
    /** Whether the state store is shared right now. */
    private readonly shared: () => boolean,
  ) {}

  /** Clients blocked now, soonest to be released first. */
  async list(): Promise<z.infer<typeof listBlockedClientsOutput>> {
    const shared = this.shared();
    const blocks = await this.threats.listBlocked();
    return { clients: blocks.map((b) => view(b)), shared };
  }

  /** Block a client by hand for `seconds`. */
  async block(input: BlockClientInput): Promise<BlockedClient> {
    const { client, seconds, reason } = blockClientInput.parse(input);
    const info = await this.threats.block(client, seconds, reason);
    return view({ info, retryAfterSeconds: seconds });
  }

  /** Lift a block (on every replica within a second); false when the client was not blocked. */
  async unblock(input: z.input<typeof unblockClientInput>): Promise<{ client: string; unblocked: boolean }> {
    const { client } = unblockClientInput.parse(input);
    return { client, unblocked: await this.threats.unblock(client) };
  }
}
