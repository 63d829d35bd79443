/**
 * Optional HTTP control routes (`/_fake/*`, enabled by `settings.controlApi`) so that a fake
 * running in another process (the standalone entry, spawned by the demo and systemd tests)
 * can be scripted: `GET /_fake/state`, `POST /_fake/<command>` with a JSON body.
 * Answers 200 with a JSON result, 400 on a bad body, 404 on an unknown command and 409 when
 * the command cannot apply now (e.g. no client connected).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseJson, readBody, reply } from './http-util.js';
import type { SendFault } from './messages.js';
import { isObject, isUint } from './protocol.js';
import type { GatewayFault, TokenFault } from './rest.js';
import type { FakeQQServer } from './server.js';

type Body = Record<string, unknown>;
type Command = (fake: FakeQQServer, body: Body) => unknown;

const TOKEN_FAULTS: TokenFault[] = [
  'none',
  'http500',
  'timeout',
  'bad_credentials',
  'malformed_json',
];
const GATEWAY_FAULTS: GatewayFault[] = ['none', 'http500', 'timeout', 'malformed_json'];

/** Thrown for a body the command cannot use (answered 400). */
class BadRequest extends Error {}

function str(body: Body, key: string): string | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new BadRequest(`${key} must be a string`);
  return value;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], key: string): T {
  const found = allowed.find((a) => a === value);
  if (found === undefined) throw new BadRequest(`${key} must be one of ${allowed.join(', ')}`);
  return found;
}

function count(body: Body): number {
  return isUint(body.count) ? body.count : Infinity;
}

/** Builds and dispatches a message event; `scene` picks the event type. */
function message(fake: FakeQQServer, body: Body): unknown {
  const content = str(body, 'content') ?? 'hello from the fake QQ server';
  const id = str(body, 'id');
  const base = { content, ...(id !== undefined && { id }) };
  const scene = oneOf(body.scene ?? 'c2c', ['c2c', 'group', 'at', 'dm', 'guild'] as const, 'scene');
  const userOpenid = str(body, 'userOpenid');
  const groupOpenid = str(body, 'groupOpenid');
  const channelId = str(body, 'channelId');
  const guildId = str(body, 'guildId');
  const guild = {
    ...base,
    ...(channelId !== undefined && { channelId }),
    ...(guildId !== undefined && { guildId }),
  };
  switch (scene) {
    case 'c2c':
      return fake.dispatchC2CMessage({ ...base, ...(userOpenid !== undefined && { userOpenid }) });
    case 'group':
      return fake.dispatchGroupAtMessage({
        ...base,
        ...(groupOpenid !== undefined && { groupOpenid }),
      });
    case 'at':
      return fake.dispatchAtMessage(guild);
    case 'dm':
      return fake.dispatchDirectMessage(guild);
    case 'guild':
      return fake.dispatchMessageCreate(guild);
  }
}

const COMMANDS: Record<string, Command> = {
  message,
  dispatch: (fake, body) => {
    const t = str(body, 't');
    if (t === undefined) throw new BadRequest('t is required');
    return fake.dispatch(t, body.d);
  },
  close: (fake, body) =>
    fake.closeClient(isUint(body.code) ? body.code : 4009, str(body, 'reason')),
  terminate: (fake) => fake.terminateClient(),
  reconnect: (fake) => fake.sendReconnect(),
  'invalid-session': (fake, body) => fake.sendInvalidSession(body.resumable === true),
  'stop-acking': (fake, body) => fake.stopAcking(body.on !== false),
  'half-open': (fake) => fake.goHalfOpen(),
  'revoke-tokens': (fake) => fake.revokeTokens(),
  refuse: (fake, body) =>
    fake.refuseConnections(body.on !== false, { gateway: body.gateway === true }),
  'token-fault': (fake, body) =>
    fake.setTokenFault(oneOf(body.fault, TOKEN_FAULTS, 'fault'), count(body)),
  'gateway-fault': (fake, body) =>
    fake.setGatewayFault(oneOf(body.fault, GATEWAY_FAULTS, 'fault'), count(body)),
  // Trusted input: the shapes are those of `SendFault`.
  'send-faults': (fake, body) => {
    if (!Array.isArray(body.faults)) throw new BadRequest('faults must be an array');
    fake.queueSendFaults(...(body.faults as SendFault[]));
  },
};

/** A summary of the fake's records, for `GET /_fake/state`. */
function state(fake: FakeQQServer): unknown {
  return {
    openConnections: fake.openConnections,
    currentSessionId: fake.currentSessionId,
    counts: {
      connections: fake.connections.length,
      identifies: fake.identifies.length,
      resumes: fake.resumes.length,
      heartbeats: fake.heartbeats.length,
      tokenRequests: fake.tokenRequests.length,
      sendRequests: fake.sendRequests.length,
    },
    violations: fake.violations,
    // With their times, so a test in another process can date the fake's last refusal.
    gatewayRequests: fake.gatewayRequests.map(({ path, status, at }) => ({ path, status, at })),
    refusedUpgrades: fake.refusedUpgrades.map(({ path, status, at }) => ({ path, status, at })),
    sentMessages: fake.sentMessages.map(({ scene, targetId, body, at }) => ({
      scene,
      targetId,
      body,
      at,
    })),
  };
}

/** Handles one `/_fake/*` request. Rejects only if reading the body fails. */
export async function handleControl(
  fake: FakeQQServer,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const name = path.slice('/_fake/'.length);
  if (name === 'state' && req.method === 'GET') {
    reply(res, 200, state(fake));
    return;
  }
  const command = COMMANDS[name];
  if (command === undefined || req.method !== 'POST') {
    reply(res, 404, { error: `unknown control command ${req.method ?? ''} ${path}` });
    return;
  }
  const raw = (await readBody(req)) ?? '';
  const body = raw.trim() === '' ? {} : parseJson(raw);
  if (!isObject(body)) {
    reply(res, 400, { error: 'body must be a JSON object' });
    return;
  }
  try {
    reply(res, 200, { ok: true, result: command(fake, body) ?? null });
  } catch (err) {
    const status = err instanceof BadRequest ? 400 : 409;
    reply(res, status, { error: err instanceof Error ? err.message : String(err) });
  }
}
