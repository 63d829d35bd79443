/**
 * The HTTP half of the fake: the token endpoint (fact sheet §1.1), gateway discovery (§2),
 * `GET /users/@me`, and the routing to the message endpoints, each with its scripted faults.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FakeContext } from './context.js';
import { HungResponses, parseJson, readBody, reply } from './http-util.js';
import { MessageApi, matchSendRoute } from './messages.js';
import { ApiCode, apiError, isObject, tokenExpiredError } from './protocol.js';
import type { TokenRequestRecord } from './records.js';

/** Scripted behaviour of the token endpoint. */
export type TokenFault =
  | 'none'
  | 'http500'
  | 'timeout'
  | 'bad_credentials'
  | 'malformed_json'
  /** Refuses the credentials repeating the request body it received (a careless endpoint). */
  | 'echo_body';

/** Scripted behaviour of `GET /gateway` and `GET /gateway/bot`. */
export type GatewayFault =
  | 'none'
  | 'http500'
  | 'timeout'
  | 'malformed_json'
  /** 401 repeating the `Authorization` it received (a careless endpoint). */
  | 'unauthorized_echo';

/** A fault and how many more requests it applies to. */
interface Armed<F> {
  fault: F;
  remaining: number;
}

/** Takes one use of an armed fault; `'none'` once it is used up. */
function take<F extends string>(armed: Armed<F | 'none'>): F | 'none' {
  if (armed.fault === 'none' || armed.remaining <= 0) return 'none';
  armed.remaining -= 1;
  return armed.fault;
}

/** Routes and answers every HTTP request of the fake. */
export class Rest {
  readonly hung = new HungResponses();
  readonly messages: MessageApi;
  readonly tokenFault: Armed<TokenFault> = { fault: 'none', remaining: 0 };
  readonly gatewayFault: Armed<GatewayFault> = { fault: 'none', remaining: 0 };
  /** Scripted: the gateway endpoints answer 503 (with refused WebSocket upgrades). */
  refuseGateway = false;

  constructor(
    private readonly ctx: FakeContext,
    private readonly wsUrl: () => string,
  ) {
    this.messages = new MessageApi(ctx, this.hung);
  }

  /** Answers one request. Rejects only on a transport error while reading the body. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const method = req.method ?? 'GET';
    const route = matchSendRoute(path);
    const allowed = allowedMethod(path, route !== null);
    if (allowed === null) {
      // No code is documented for an unknown API; 404 is what the platform returns.
      reply(res, 404, apiError(404, 'API not found'));
    } else if (method !== allowed) {
      reply(res, 405, apiError(405, 'method not allowed'));
    } else if (path === '/app/getAppAccessToken') {
      await this.token(req, res);
    } else {
      const authorized = this.checkAuth(req, path);
      if (route !== null) await this.messages.handle(req, res, route, path, authorized);
      else if (!authorized) reply(res, 401, tokenExpiredError());
      else if (path === '/users/@me') this.me(res);
      else this.gateway(res, path, req.headers.authorization);
    }
  }

  private async token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const body = raw === null ? undefined : parseJson(raw);
    const fault = take(this.tokenFault);
    const record: TokenRequestRecord = {
      appId: isObject(body) ? body.appId : undefined,
      outcome: 'bad_credentials',
      expiresInSec: null,
      at: Date.now(),
    };
    const { appId, clientSecret } = this.ctx.settings;
    if (
      !isObject(body) ||
      typeof body.appId !== 'string' ||
      typeof body.clientSecret !== 'string'
    ) {
      this.ctx.violation(
        'token-request-malformed',
        'token request body is not {"appId","clientSecret"} strings',
      );
    }
    switch (fault) {
      case 'timeout':
        this.hung.hang(res);
        record.outcome = 'timeout';
        break;
      case 'http500':
        reply(res, 500, { code: ApiCode.TokenInternal, message: 'internal err' });
        record.outcome = 'http500';
        break;
      case 'malformed_json':
        reply(res, 200, '{"access_token":"');
        record.outcome = 'malformed_json';
        break;
      case 'echo_body':
        reply(res, 200, {
          code: ApiCode.BadCredentials,
          message: `invalid appid or secret in ${raw ?? ''}`,
        });
        break;
      case 'bad_credentials':
      case 'none': {
        const ok =
          fault === 'none' &&
          isObject(body) &&
          body.appId === appId &&
          body.clientSecret === clientSecret;
        if (!ok) {
          // The platform keeps HTTP 200 on failure: the error is only in the body.
          reply(res, 200, { code: ApiCode.BadCredentials, message: 'invalid appid or secret' });
          break;
        }
        const grant = this.ctx.tokens.grant();
        reply(res, 200, { access_token: grant.token, expires_in: String(grant.expiresInSec) });
        record.outcome = grant.outcome;
        record.expiresInSec = grant.expiresInSec;
      }
    }
    this.ctx.records.tokenRequests.push(record);
    this.ctx.events.emit('token', record);
  }

  private gateway(res: ServerResponse, path: string, authorization: string | undefined): void {
    const fault = this.refuseGateway ? 'refused' : take(this.gatewayFault);
    let status = 200;
    switch (fault) {
      case 'refused':
        status = 503;
        reply(res, status, apiError(503, 'service unavailable'));
        break;
      case 'http500':
        status = 500;
        reply(res, status, apiError(500, 'internal server error'));
        break;
      case 'timeout':
        status = 0;
        this.hung.hang(res);
        break;
      case 'malformed_json':
        reply(res, status, '{"url": "ws://');
        break;
      case 'unauthorized_echo':
        status = 401;
        reply(res, status, apiError(ApiCode.TokenExpired, `invalid token: ${authorization ?? ''}`));
        break;
      case 'none': {
        const url = this.wsUrl();
        const body =
          path === '/gateway'
            ? { url }
            : {
                url,
                shards: this.ctx.settings.shards,
                session_start_limit: this.ctx.sessionStarts.snapshot(),
              };
        reply(res, status, body);
      }
    }
    const record = { path, status, at: Date.now() };
    this.ctx.records.gatewayRequests.push(record);
    this.ctx.events.emit('gateway', record);
  }

  private me(res: ServerResponse): void {
    const { id, username } = this.ctx.settings.bot;
    reply(res, 200, { id, username, avatar: '', union_openid: '', union_user_account: '' });
  }

  /** Checks `Authorization: QQBot <token>`, recording a violation when the client is at fault. */
  private checkAuth(req: IncomingMessage, path: string): boolean {
    const status = this.ctx.tokens.check(req.headers.authorization);
    if (status === 'expired') {
      this.ctx.violation('rest-expired-token', `${path}: token past its expires_in`);
    } else if (status !== 'valid' && status !== 'revoked') {
      this.ctx.violation('rest-bad-token', `${path}: Authorization is ${status}`);
    }
    return status === 'valid';
  }
}

/** The method a known path takes, or null for an unknown path. */
function allowedMethod(path: string, isSend: boolean): 'GET' | 'POST' | null {
  if (isSend || path === '/app/getAppAccessToken') return 'POST';
  if (path === '/gateway' || path === '/gateway/bot' || path === '/users/@me') return 'GET';
  return null;
}
