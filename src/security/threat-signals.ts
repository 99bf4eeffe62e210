/**
 * What the request path tells the suspicious-client detector. Stages that notice something
 * (input validation, authentication, routing, rate limiting) report a signal for the client;
 * the detector (src/ratelimit) turns signals into a decaying threat score and a response.
 */
export type ThreatSignal =
  | 'input_rejected' // a validation rule matched
  | 'auth_failed' // 401 or 403 from the auth stage
  | 'not_found' // 404 on a path nothing serves (scanning)
  | 'rate_limited'; // over the limit

export interface ThreatSink {
  /** `client` is the client key (the IP, trusted-proxy aware); `detail` is a bounded label, e.g. a path for 404 scanning. */
  record(client: string, signal: ThreatSignal, detail?: string): void;
}

/** Used until a detector is configured: signals are dropped. */
export const IGNORE_THREATS: ThreatSink = { record() {} };
