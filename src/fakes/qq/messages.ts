/**
 * The four message-sending endpoints (fact sheet §7): validation, the passive-reply rules,
 * the `(msg_id, msg_seq)` dedup, scripted send faults and the records tests assert on.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FakeContext } from './context.js';
import { parseJson, readBody, reply, type HungResponses } from './http-util.js';
import { messageId, rfc3339, snowflake } from './payloads.js';
import { ApiCode, apiError, isObject, isUint, tokenExpiredError } from './protocol.js';
import type { SendRecord, SendScene } from './records.js';

/** A scripted answer for one upcoming send request (consumed after authentication). */
export type SendFault =
  /** 429; `retryAfterSec` goes in a `Retry-After` header and/or a `retry_after` body field. */
  | {
      kind: 'rate_limited';
      retryAfterSec?: number;
      hint?: 'header' | 'body' | 'both';
      code?: number;
    }
  /** A 5xx (default 500) with an internal-error body. */
  | { kind: 'server_error'; status?: number }
  /** 401 / 11244; also revokes the current token (default) so a refresh gets a new one. */
  | { kind: 'token_expired'; revoke?: boolean }
  /** A business error (default HTTP 400). */
  | { kind: 'business'; code: number; message: string; status?: number }
  /** Never answered until the client gives up or the fake closes. */
  | { kind: 'timeout' }
  /** The TCP connection is destroyed without an answer. */
  | { kind: 'reset' }
  /** 401 whose message repeats the `Authorization` it received (a careless endpoint). */
  | { kind: 'unauthorized_echo' };

/** The route of a message-sending request. */
export interface SendRoute {
  scene: SendScene;
  targetId: string;
}

const ROUTES: [RegExp, SendScene][] = [
  [/^\/v2\/users\/([^/]+)\/messages$/, 'c2c'],
  [/^\/v2\/groups\/([^/]+)\/messages$/, 'group'],
  [/^\/channels\/([^/]+)\/messages$/, 'channel'],
  [/^\/dms\/([^/]+)\/messages$/, 'dm'],
];

/** Matches a path against the four send endpoints. */
export function matchSendRoute(path: string): SendRoute | null {
  for (const [pattern, scene] of ROUTES) {
    const id = pattern.exec(path)?.[1];
    if (id !== undefined) return { scene, targetId: decodeURIComponent(id) };
  }
  return null;
}

/** msg_type values the v2 endpoints know (fact sheet §7.2). */
const MSG_TYPES = new Set([0, 1, 2, 3, 4, 6, 7]);

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  accepted?: boolean;
}

/** State and handling of the send endpoints. */
export class MessageApi {
  /** Scripted answers for the next sends, first in first out. */
  readonly faults: SendFault[] = [];
  /** `msg_id\0msg_seq` pairs already used. */
  private readonly usedSeqs = new Set<string>();
  private readonly repliesPerMsgId = new Map<string, number>();

  constructor(
    private readonly ctx: FakeContext,
    private readonly hung: HungResponses,
  ) {}

  /** Handles and records a send request; a fault is consumed only by an authorized one. */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    route: SendRoute,
    path: string,
    authorized: boolean,
  ): Promise<void> {
    const raw = await readBody(req);
    const body = raw === null ? undefined : parseJson(raw);
    const fault = authorized ? this.faults.shift() : undefined;
    let answer: Answer | null;
    if (!authorized) {
      answer = { status: 401, body: tokenExpiredError() };
    } else if (raw === null) {
      answer = { status: 413, body: apiError(ApiCode.InvalidParam, 'body too large') };
    } else if (fault !== undefined) {
      answer = this.faultAnswer(fault, res, req.headers.authorization);
    } else if (!isObject(body)) {
      this.ctx.violation('send-invalid-body', `${path}: body is not a JSON object`);
      answer = { status: 400, body: apiError(ApiCode.InvalidParam, 'invalid json body') };
    } else {
      answer =
        route.scene === 'c2c' || route.scene === 'group'
          ? this.sendV2(body, path)
          : this.sendGuild(body, route, path);
    }
    const headers = { ...req.headers };
    delete headers.authorization;
    const record: SendRecord = {
      ...route,
      path,
      headers,
      body,
      status: answer?.status ?? 0,
      response: answer?.body,
      accepted: answer?.accepted === true,
      at: Date.now(),
    };
    if (answer !== null) reply(res, answer.status, answer.body, answer.headers);
    this.ctx.records.sendRequests.push(record);
    this.ctx.events.emit('send-request', record);
    if (record.accepted) {
      this.ctx.records.sentMessages.push(record);
      this.ctx.events.emit('message-sent', record);
    }
  }

  /** The answer of a scripted fault; `null` when nothing is (or will be) answered. */
  private faultAnswer(
    fault: SendFault,
    res: ServerResponse,
    authorization: string | undefined,
  ): Answer | null {
    switch (fault.kind) {
      case 'rate_limited': {
        const code = fault.code ?? ApiCode.MsgLimitExceeded;
        const hint = fault.hint ?? 'header';
        const secs = fault.retryAfterSec;
        const inBody = secs !== undefined && hint !== 'header';
        const inHeader = secs !== undefined && hint !== 'body';
        return {
          status: 429,
          body: { ...apiError(code, 'msg limit exceed'), ...(inBody && { retry_after: secs }) },
          ...(inHeader && { headers: { 'retry-after': String(secs) } }),
        };
      }
      case 'server_error':
        return { status: fault.status ?? 500, body: apiError(500, 'internal server error') };
      case 'token_expired':
        if (fault.revoke !== false) this.ctx.tokens.revokeAll();
        return { status: 401, body: tokenExpiredError() };
      case 'business':
        return { status: fault.status ?? 400, body: apiError(fault.code, fault.message) };
      case 'timeout':
        this.hung.hang(res);
        return null;
      case 'reset':
        res.destroy();
        return null;
      case 'unauthorized_echo':
        return {
          status: 401,
          body: apiError(ApiCode.TokenExpired, `invalid token: ${authorization ?? '(none)'}`),
        };
    }
  }

  /** C2C and group sends (fact sheet §7.2, §7.3). */
  private sendV2(body: Record<string, unknown>, path: string): Answer {
    const problem = v2BodyProblem(body);
    if (problem !== null) {
      const [code, message] = problem;
      this.ctx.violation('send-invalid-body', `${path}: ${message}`);
      return { status: 400, body: apiError(code, message) };
    }
    const { msg_id: msgId, event_id: eventId } = body;
    const refusal = this.passiveRefusal(msgId, eventId);
    if (refusal !== null) return refusal;
    if (typeof msgId === 'string') {
      const key = `${msgId}\0${isUint(body.msg_seq) ? body.msg_seq : 1}`;
      if (this.usedSeqs.has(key)) {
        return {
          status: 400,
          body: apiError(ApiCode.Deduplicated, '消息被去重，请检查请求msgseq'),
        };
      }
      const count = this.repliesPerMsgId.get(msgId) ?? 0;
      const max = this.ctx.settings.maxRepliesPerMsgId;
      if (max !== null && count >= max) {
        return { status: 400, body: apiError(ApiCode.MsgLimitExceeded, 'msg limit exceed') };
      }
      this.usedSeqs.add(key);
      this.repliesPerMsgId.set(msgId, count + 1);
    }
    return {
      status: 200,
      body: { id: messageId(), timestamp: Math.floor(Date.now() / 1000) },
      accepted: true,
    };
  }

  /** Channel and DM sends: the answer is a Message object (fact sheet §7.2). */
  private sendGuild(body: Record<string, unknown>, route: SendRoute, path: string): Answer {
    const hasContent = typeof body.content === 'string' && body.content.trim() !== '';
    const hasOther = ['embed', 'ark', 'markdown', 'image', 'keyboard'].some(
      (k) => body[k] !== undefined,
    );
    if (!hasContent && !hasOther) {
      this.ctx.violation('send-invalid-body', `${path}: no content, embed, ark, markdown or image`);
      return { status: 400, body: apiError(ApiCode.EmptyMessage, 'empty message') };
    }
    const { msg_id: msgId } = body;
    if (msgId !== undefined && this.ctx.settings.requireKnownMsgId && !this.isKnown(msgId)) {
      return { status: 400, body: apiError(ApiCode.BadGuildMsgId, 'reply msg_id wrong') };
    }
    const { id: botId, username } = this.ctx.settings.bot;
    const place =
      route.scene === 'dm'
        ? { guild_id: route.targetId, channel_id: snowflake() }
        : { guild_id: this.guildOf(route.targetId), channel_id: route.targetId };
    const message = {
      id: snowflake(),
      ...place,
      content: typeof body.content === 'string' ? body.content : '',
      timestamp: rfc3339(),
      author: { id: botId, username, bot: true },
      ...(route.scene === 'dm' && { direct_message: true }),
      ...(typeof msgId === 'string' && { message_reference: { message_id: msgId } }),
    };
    return { status: 200, body: message, accepted: true };
  }

  /** Refuses unknown reply targets and active pushes, as the platform does now. */
  private passiveRefusal(msgId: unknown, eventId: unknown): Answer | null {
    const { settings } = this.ctx;
    if (msgId !== undefined && settings.requireKnownMsgId && !this.isKnown(msgId)) {
      return { status: 400, body: apiError(ApiCode.BadMsgId, '请求参数msg_id无效或越权') };
    }
    if (eventId !== undefined && settings.requireKnownMsgId && !this.isKnown(eventId)) {
      return { status: 400, body: apiError(ApiCode.BadEventId, 'invalid event_id') };
    }
    if (msgId === undefined && eventId === undefined && !settings.allowActiveSends) {
      // Active push was discontinued on 2025-04-21 (fact sheet §7.3).
      return {
        status: 400,
        body: apiError(ApiCode.NoPermission, 'no permission to push active message'),
      };
    }
    return null;
  }

  private isKnown(id: unknown): boolean {
    return typeof id === 'string' && this.ctx.knownIds.has(id);
  }

  /** The guild of a channel seen in a dispatch, else the configured default. */
  private guildOf(channelId: string): string {
    for (const { d } of this.ctx.records.dispatches) {
      if (isObject(d) && d.channel_id === channelId && typeof d.guild_id === 'string')
        return d.guild_id;
    }
    return this.ctx.settings.defaultGuildId;
  }
}

/** Fields that msg_types other than text require (fact sheet §7.2). */
const REQUIRED_FIELD: Partial<Record<number, string>> = {
  2: 'markdown',
  3: 'ark',
  4: 'embed',
  7: 'media',
};

/** What is wrong with a v2 body as `[code, message]`, or null. A correct client never sends these. */
function v2BodyProblem(body: Record<string, unknown>): [number, string] | null {
  const { msg_type: type, content, msg_seq: seq, msg_id: msgId } = body;
  const bad = (message: string): [number, string] => [ApiCode.InvalidParam, message];
  if (!isUint(type) || !MSG_TYPES.has(type))
    return bad(`msg_type ${JSON.stringify(type)} is missing or unknown`);
  if (content !== undefined && typeof content !== 'string') return bad('content is not a string');
  if (seq !== undefined && !isUint(seq))
    return bad(`msg_seq ${JSON.stringify(seq)} is not an integer`);
  if (msgId !== undefined && typeof msgId !== 'string') return bad('msg_id is not a string');
  // msg_type 7 needs a non-empty content too (known platform bug, fact sheet §7.2).
  if ((type === 0 || type === 1 || type === 7) && (content ?? '') === '') {
    return [ApiCode.EmptyMessage, `empty content for msg_type ${type}`];
  }
  const field = REQUIRED_FIELD[type];
  if (field !== undefined && !isObject(body[field]))
    return bad(`msg_type ${type} without ${field}`);
  return null;
}
