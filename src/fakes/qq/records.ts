/**
 * What the fake records about its clients, and the events it emits for each record.
 *
 * A violation is something a correct client could not have done given what the server told
 * it (a seq it never saw, a token it was never given or whose announced lifetime is over, a
 * frame out of order). Things a correct client can run into (a token revoked behind its
 * back, a dedup of a retried send) are answered as the platform does but are not violations.
 */

/** Kinds of protocol violation the fake detects. */
export type ViolationKind =
  | 'frame-before-hello'
  | 'binary-frame'
  | 'malformed-frame'
  | 'unknown-opcode'
  | 'duplicate-auth'
  | 'bad-token'
  | 'expired-token'
  | 'bad-intents'
  | 'bad-shard'
  | 'identify-over-limit'
  | 'heartbeat-bad-seq'
  | 'heartbeat-seq-ahead'
  | 'heartbeat-missed'
  | 'resume-seq-ahead'
  | 'rest-bad-token'
  | 'rest-expired-token'
  | 'send-invalid-body'
  | 'token-request-malformed'
  | 'webhook-bad-validation';

/** One protocol violation. */
export interface Violation {
  kind: ViolationKind;
  detail: string;
  at: number;
}

/** A WebSocket connection accepted by the fake. */
export interface ConnectionRecord {
  connectionId: number;
  at: number;
}

/** An Identify (op 2) frame, accepted or not. */
export interface IdentifyRecord {
  connectionId: number;
  token: unknown;
  intents: unknown;
  shard: unknown;
  properties: unknown;
  accepted: boolean;
  /** Session created by this Identify, when accepted. */
  sessionId: string | null;
  at: number;
}

/** A Resume (op 6) frame, accepted or not. */
export interface ResumeRecord {
  connectionId: number;
  sessionId: unknown;
  seq: unknown;
  accepted: boolean;
  /** Dispatches replayed before RESUMED. */
  replayed: number;
  at: number;
}

/** A Heartbeat (op 1) frame. */
export interface HeartbeatRecord {
  connectionId: number;
  sessionId: string | null;
  seq: unknown;
  acked: boolean;
  at: number;
}

/** A dispatch (op 0) written to a socket, first delivery or replay. */
export interface DeliveryRecord {
  connectionId: number;
  sessionId: string;
  s: number;
  t: string;
  replay: boolean;
  at: number;
}

/** A dispatch created by the fake (delivered now or buffered for Resume). */
export interface DispatchRecord {
  sessionId: string;
  s: number;
  t: string;
  id: string;
  d: unknown;
  delivered: boolean;
}

/** A closed WebSocket connection. */
export interface DisconnectRecord {
  connectionId: number;
  code: number;
  reason: string;
  /** Who started the close: the fake (close code or terminate) or the client/network. */
  by: 'server' | 'client';
  at: number;
}

/** A request to the token endpoint. */
export interface TokenRequestRecord {
  appId: unknown;
  outcome:
    'issued' | 'reused' | 'renewed' | 'bad_credentials' | 'http500' | 'timeout' | 'malformed_json';
  /** Seconds announced in `expires_in`, on success. */
  expiresInSec: number | null;
  at: number;
}

/** A request to `GET /gateway` or `GET /gateway/bot`. */
export interface GatewayRequestRecord {
  path: string;
  status: number;
  at: number;
}

/** A WebSocket upgrade the fake refused (`refuseConnections()`, a wrong path, closing). */
export interface RefusedUpgradeRecord {
  path: string;
  status: number;
  at: number;
}

/** Conversation kinds of the four message-sending endpoints. */
export type SendScene = 'c2c' | 'group' | 'channel' | 'dm';

/** A request to one of the message-sending endpoints, with the fake's answer. */
export interface SendRecord {
  scene: SendScene;
  /** openid, group_openid, channel_id or guild_id from the path. */
  targetId: string;
  path: string;
  /** Request headers without `authorization`. */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body (`undefined` when it was not JSON). */
  body: unknown;
  status: number;
  response: unknown;
  /** True when the platform would have delivered the message. */
  accepted: boolean;
  at: number;
}

/** Events of `FakeQQServer` and their payloads. */
export interface FakeQQEvents {
  connection: ConnectionRecord;
  /** Any parsed client frame, before it is handled. */
  frame: { connectionId: number; data: unknown };
  identify: IdentifyRecord;
  /** READY sent. */
  ready: { connectionId: number; sessionId: string };
  resume: ResumeRecord;
  /** RESUMED sent. */
  resumed: { connectionId: number; sessionId: string };
  heartbeat: HeartbeatRecord;
  dispatch: DispatchRecord;
  disconnect: DisconnectRecord;
  token: TokenRequestRecord;
  gateway: GatewayRequestRecord;
  /** A WebSocket upgrade answered with an HTTP error instead of 101. */
  'upgrade-refused': RefusedUpgradeRecord;
  /** Every send request, whatever its answer. */
  'send-request': SendRecord;
  /** A send the platform would have delivered. */
  'message-sent': SendRecord;
  violation: Violation;
}

/** Names of the events of `FakeQQServer`. */
export type FakeQQEventName = keyof FakeQQEvents;
