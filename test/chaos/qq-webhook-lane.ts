/**
 * The QQ webhook instance of a chaos run: a fourth instance (`platforms.qqhook`, QQ with
 * `transport: webhook`) in the same gateway, whose fake platform (a FakeQQServer of its own: its
 * own bot, so the machine-wide credential lock is not shared) posts signed callbacks to the
 * gateway's inbound server and retries those not acknowledged, while the schedule injects
 * webhook faults between the others: forged signatures, stale or future timestamps, oversized
 * bodies, wrong methods and paths, a signed non-JSON body, another app id; a callback repeated
 * after its ack or because its ack was lost; op 13 validations; requests that stop mid-body
 * (hang, trickle) or are reset mid-body; token endpoint faults and 5xx / 429 on its replies.
 * Restarts (kill -9, fatal exits) hit it with every other instance. Its invariants:
 *
 * - rejection: each refused request gets its status (401, 413, 405, 404, 400, 403, 408) or no
 *   answer at all because no process listened at that instant (counted, `unreachable`); a
 *   request that stops mid-body is cut (408) within the request timeout + a margin;
 * - nothing refused is dispatched: every refused body carries a message id of its own, and a
 *   reply to one, or a log line naming its event, is a violation;
 * - delivery: every acknowledged callback is answered exactly once (the platform refuses a
 *   second reply with the same msg_seq: two accepted replies mean two answers; replies with
 *   two msg_seq values mean the handler ran twice, whatever the platform accepted), or its failure
 *   is logged with a code, or the process that acknowledged it died before answering (kill -9,
 *   fatal: webhook mode has no resume point, docs/platforms/qqbot.md; counted);
 * - state truth: while the live process's state file says `qqhook` connected (gateway
 *   running), the listener accepts connections and the fake has issued that process a token;
 * - op 13: every validation that got an answer got the right one (the fake checks it);
 * - recovery: connected again once the faults stop (checked by the soak's quiet loop).
 */
import { randomInt } from 'node:crypto';
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type { StateDocument } from '../../src/state/schema.js';
import {
  FakeQQServer,
  payloads,
  type CallbackAttempt,
  type CallbackRecord,
  type SendRecord,
} from '../../src/fakes/qq/index.js';
import { freePort } from '../support/ports.js';
import type { LogLine } from './gateway-process.js';
import type { ProcessEnd } from './ledger.js';
import type { Rng } from './prng.js';
import type { WebhookFault, WhBadRequest, WhForgery } from './schedule.js';
import type { Violations } from './violations.js';

/** The instance's name in the config. */
export const WH_INSTANCE = 'qqhook';

/** The instance's timings and bounds: tiny, like the others, so faults fit in a short run. */
export const WH_TIMINGS = {
  requestTimeoutMs: 500,
  maxBodyBytes: 16 * 1024,
  timestampToleranceS: 60,
  restMs: 400,
  tokenMs: 400,
  backoffMs: [20, 40, 80, 160],
  /** A request that stops mid-body is cut within request_timeout_ms + this (timer, write). */
  cutMarginMs: 1_000,
  /**
   * An acknowledged callback whose reply was not even tried this long after the ack, when its
   * process dies, was dropped (the echo answers in milliseconds; the handler's send timeout
   * and a reply's retries are the slow part, and they show as send requests).
   */
  answerBoundMs: 5_000,
  /** The platform's retries of an unacknowledged callback: long enough to span a restart. */
  retry: { attempts: 60, delayMs: 100 },
  attemptTimeoutMs: 2_000,
} as const;

/** Codes that mean the webhook transport failed where it must not. */
export const WH_BUG_CODES = [
  'GW_ERR_INGRESS_LISTENER_DIED',
  'GW_ERR_INGRESS_LISTEN',
  'GW_ERR_INGRESS_ROUTE_TAKEN',
] as const;

/** Log codes of refused callbacks, counted for the summary (warn lines, DESIGN: coded). */
const REFUSAL_CODES = new Set([
  'GW_ERR_QQ_WEBHOOK_SIGNATURE',
  'GW_ERR_QQ_WEBHOOK_TIMESTAMP',
  'GW_ERR_QQ_WEBHOOK_BAD_BODY',
  'GW_ERR_QQ_WEBHOOK_APPID',
]);

const APP_SECRET = 'chaos-hook-secret-9e8d7c6b5a';
const FORGER_SECRET = 'not-the-bot-secret-0000000000';
const USERS = ['D1E2F3A4B5C6D7E8F9A0B1C2D3E4F5A6', '5A6B7C8D9E0F1A2B3C4D5E6F7A8B9C0D'];
const WRONG_METHODS = ['GET', 'PUT', 'DELETE', 'PATCH'] as const;
/** Webhook faults scripted on the fake, not sent as requests. */
type RequestlessKind = 'wh_token_fault' | 'wh_send_fault' | 'wh_redeliver';

const WRONG_PATHS = ['/', `/qqbot/${WH_INSTANCE}/x`, '/qqbot/other', `/QQBOT/${WH_INSTANCE}`];

interface WhMessage {
  msgId: string;
  record: CallbackRecord;
  /** Pid of the live gateway at each accepted reply. */
  replies: Array<number | null>;
  failedCode: string | null;
  /** When the fake got its ack (epoch ms). */
  ackedAt: number | null;
  /** Send requests for its reply the fake saw, accepted or not. */
  sendAttempts: number;
  /** Repeats that reached the gateway after the event was taken: each must be dropped. */
  repeats: number;
  /** When the last repeat was acknowledged (epoch ms). */
  repeatAt: number;
  /** `duplicate event dropped` lines the gateway logged for the event. */
  dropped: number;
  /** When the first attempt was sent (epoch ms). */
  sentAt: number;
  /** msg_seq values of those requests: more than one means the handler ran more than once. */
  seqs: Set<number>;
  /** Acknowledged, then its process died before answering. */
  inCrash: boolean;
  /** Indexes of attempts in flight when a process died: an ack of one came from the dead. */
  crashAttempts: Set<number>;
}

/** Refused requests of one kind: sent, refused with the right status, no answer at all. */
export interface RejectionCount {
  sent: number;
  rejected: number;
  unreachable: number;
}

export interface WhStats {
  pushed: number;
  acknowledged: number;
  answered: number;
  answered_twice: number;
  /** Replies with more than one msg_seq, or a repeat not dropped: handled more than once. */
  handled_twice: number;
  /** Repeats (lost ack, redelivery after the ack) dropped by the dedupe. */
  repeats_dropped: number;
  failed_with_code: number;
  lost_in_crash: number;
  never_answered: number;
  /** Callbacks the platform gave up on or was still retrying at the end (not owed). */
  not_acknowledged: number;
  /** Callbacks that needed more than one attempt. */
  retried: number;
  acks_lost: number;
  redelivered_after_ack: number;
  validations: { answered: number; unreachable: number };
  rejections: Record<string, RejectionCount>;
  /** Ack → accepted reply: the longest, ms. */
  answer_max_ms: number | null;
  /** Longest request-timeout cut (408) after the headers, ms. */
  cut_max_ms: number | null;
  resets_sent: number;
  /** Refusal log lines by code (warn with a code for each refused callback). */
  refusals_logged: Record<string, number>;
  listener_probes: number;
  fake_violations: number;
}

export class WebhookLane {
  private readonly messages = new Map<string, WhMessage>();
  /** Message ids of refused bodies: none may ever be dispatched. */
  private readonly forbidden = new Set<string>();
  private readonly rejections: Record<string, RejectionCount> = {};
  private readonly cuts: number[] = [];
  /** Ack → accepted reply, ms (negative when the reply beat the ack back to the platform). */
  private readonly answerMs: number[] = [];
  private readonly refusalsLogged: Record<string, number> = {};
  private readonly inflight = new Set<Promise<void>>();
  private readonly processStarts = new Map<number, number>();
  /** When each gateway process ended (epoch ms). */
  private readonly ends: number[] = [];
  private readonly tokenlessReported = new Set<number>();
  private probe: Promise<void> | null = null;
  private lastProbeAt = 0;
  private probes = 0;
  private count = 0;
  private forged = 0;
  private resets = 0;
  private redelivered = 0;
  private validationsAnswered = 0;
  private validationsUnreachable = 0;
  private closed = false;

  private constructor(
    readonly fake: FakeQQServer,
    readonly port: number,
    private readonly violations: Violations,
    private readonly runTime: (epochMs: number) => number,
    private readonly stall: () => number,
    private readonly livePid: () => number | null,
    private readonly lastDoc: () => StateDocument | undefined,
  ) {
    fake.webhook.target = `http://127.0.0.1:${port}/qqbot/${WH_INSTANCE}`;
    fake.webhook.retry = { ...WH_TIMINGS.retry };
    fake.webhook.attemptTimeoutMs = WH_TIMINGS.attemptTimeoutMs;
    fake.on('send-request', (r: SendRecord) => this.onSend(r));
  }

  static async start(
    violations: Violations,
    runTime: (epochMs: number) => number,
    stall: () => number,
    livePid: () => number | null,
    lastDoc: () => StateDocument | undefined,
  ): Promise<WebhookLane> {
    const fake = await FakeQQServer.start({
      // A bot of its own per run (the credential lock is machine-wide, keyed by the app id).
      appId: String(randomInt(100_000_000, 1_000_000_000)),
      clientSecret: APP_SECRET,
      tokenTtlSec: 20,
      renewWindowSec: 10,
    });
    // Fixed for the run: every restarted process binds it again, as under systemd.
    const port = await freePort();
    return new WebhookLane(fake, port, violations, runTime, stall, livePid, lastDoc);
  }

  /** `platforms.qqhook` of the run's config; the secret comes from CHAOS_QQHOOK_SECRET. */
  config(): Record<string, unknown> {
    const t = WH_TIMINGS;
    return {
      type: 'qqbot',
      enabled: true,
      app_id: this.fake.settings.appId,
      client_secret: '${CHAOS_QQHOOK_SECRET}',
      token_url: this.fake.tokenUrl,
      api_base: this.fake.apiBase,
      transport: 'webhook',
      webhook: {
        listen: `127.0.0.1:${this.port}`,
        max_body_bytes: t.maxBodyBytes,
        request_timeout_ms: t.requestTimeoutMs,
        timestamp_tolerance_s: t.timestampToleranceS,
      },
      reconnect: { backoff_ms: [...t.backoffMs], max_attempts: 1_000_000, healthy_after_ms: 1_000 },
      timeouts: { rest_ms: t.restMs, token_ms: t.tokenMs },
      token_refresh_margin_ms: 8_000,
      send: { max_attempts: 4, retry_delay_ms: 20, max_retry_delay_ms: 1_000 },
    };
  }

  get env(): Record<string, string> {
    return { CHAOS_QQHOOK_SECRET: APP_SECRET };
  }

  /** Secrets that must never appear in the state file. */
  secrets(): string[] {
    return [APP_SECRET, this.fake.currentToken ?? ''];
  }

  /** A gateway process started (its token must be issued after this). */
  processStarted(pid: number): void {
    this.processStarts.set(pid, Date.now());
  }

  /** A user writes: the platform posts the signed callback and retries it until acknowledged. */
  push(rng: Rng): void {
    this.count += 1;
    const msgId = `ROBOT1.0_hook-${this.count}-${randomInt(1e9)}`;
    const d = payloads.c2cMessage({
      id: msgId,
      content: `hook ping ${this.count}`,
      userOpenid: rng.pick(USERS),
    });
    const prepared = this.fake.webhook.prepare('C2C_MESSAGE_CREATE', d);
    this.messages.set(msgId, {
      msgId,
      record: prepared,
      replies: [],
      failedCode: null,
      ackedAt: null,
      sendAttempts: 0,
      seqs: new Set(),
      repeats: 0,
      repeatAt: 0,
      dropped: 0,
      sentAt: Date.now(),
      inCrash: false,
      crashAttempts: new Set(),
    });
    // Each attempt signed afresh, as a platform retrying later would.
    this.track(
      this.fake.webhook.deliverRecord(prepared).then((record) => {
        const message = this.messages.get(msgId);
        if (!record.acked || message === undefined) return;
        message.ackedAt = Date.now();
        // An earlier attempt whose ack was lost reached the gateway: this one is a repeat.
        if (record.attempts.some((a) => a.lost !== undefined)) {
          message.repeats += 1;
          message.repeatAt = message.ackedAt;
        }
      }),
    );
  }

  private onSend(r: SendRecord): void {
    const body = r.body as { msg_id?: unknown; msg_seq?: unknown } | undefined;
    const msgId = typeof body?.msg_id === 'string' ? body.msg_id : null;
    if (msgId === null) return;
    if (this.forbidden.has(msgId)) {
      this.violations.add(
        'forged',
        `${WH_INSTANCE}: a reply to ${msgId}, whose callback was refused: it reached the pipeline`,
        this.runTime(r.at),
      );
      return;
    }
    const message = this.messages.get(msgId);
    if (message === undefined) return;
    message.sendAttempts += 1;
    if (typeof body?.msg_seq === 'number' && !message.seqs.has(body.msg_seq)) {
      message.seqs.add(body.msg_seq);
      // A retried send keeps its msg_seq; a second run of the handler takes the next one.
      if (message.seqs.size === 2) {
        this.violations.add(
          'duplicate',
          `${WH_INSTANCE}: ${msgId} replied with msg_seq ${[...message.seqs].join(', ')}: handled more than once`,
          this.runTime(r.at),
        );
      }
    }
    if (!r.accepted) return;
    const pid = this.livePid();
    message.replies.push(pid);
    if (message.ackedAt !== null && message.replies.length === 1) {
      this.answerMs.push(r.at - message.ackedAt);
    }
    if (message.replies.length > 1) {
      this.violations.add(
        'duplicate',
        `${WH_INSTANCE}: ${msgId} answered ${message.replies.length} times (pids ${message.replies.join(', ')})`,
        this.runTime(r.at),
      );
    }
  }

  /** A gateway log line: failures logged with an event id, refusals, forbidden dispatches. */
  onLogLine(line: LogLine): void {
    const code = typeof line.code === 'string' ? line.code : null;
    if (code !== null && REFUSAL_CODES.has(code)) {
      this.refusalsLogged[code] = (this.refusalsLogged[code] ?? 0) + 1;
    }
    const eventId = typeof line.event_id === 'string' ? line.event_id : null;
    if (eventId === null || !eventId.startsWith(`${WH_INSTANCE}:`)) return;
    const id = eventId.slice(WH_INSTANCE.length + 1);
    if (line.msg === 'duplicate event dropped') {
      const repeated = this.messages.get(id);
      if (repeated !== undefined) repeated.dropped += 1;
    }
    if (this.forbidden.has(id)) {
      this.violations.add(
        'forged',
        `${WH_INSTANCE}: the gateway logged about ${eventId} ("${line.msg ?? ''}"), whose callback was refused`,
      );
      return;
    }
    const message = this.messages.get(id);
    if (message !== undefined && code !== null) message.failedCode ??= code;
  }

  /**
   * A state-file sample: while it says connected (gateway running, live process), a token was
   * issued to that process and the listener accepts connections (probed, twice on a refusal).
   */
  sample(doc: StateDocument, at: number): void {
    const pid = this.livePid();
    if (!this.connectedIn(doc, pid) || pid === null) return;
    const started = this.processStarts.get(pid) ?? 0;
    const issued = this.fake.tokenRequests.some(
      (r) => r.at >= started && ['issued', 'reused', 'renewed'].includes(r.outcome),
    );
    if (!issued && !this.tokenlessReported.has(pid)) {
      this.tokenlessReported.add(pid);
      this.violations.add(
        'state-truth',
        `${WH_INSTANCE} connected in pid ${pid} but the fake issued it no token`,
        this.runTime(at),
      );
    }
    if (this.probe === null && at - this.lastProbeAt >= 250 && !this.closed) {
      this.lastProbeAt = at;
      this.probe = this.probeListener(pid).finally(() => {
        this.probe = null;
      });
    }
  }

  private connectedIn(doc: StateDocument | undefined, pid: number | null): boolean {
    return (
      doc !== undefined &&
      pid !== null &&
      doc.pid === pid &&
      doc.gateway.state === 'running' &&
      doc.platforms[WH_INSTANCE]?.state === 'connected'
    );
  }

  private async probeListener(pid: number): Promise<void> {
    this.probes += 1;
    if (await this.accepts()) return;
    // Refused: the process may be stopping, the state file one write behind. Look again.
    await delay(300);
    if (!this.connectedIn(this.lastDoc(), pid) || this.livePid() !== pid) return;
    if (await this.accepts()) return;
    this.violations.add(
      'state-truth',
      `${WH_INSTANCE} connected in pid ${pid}, but nothing listens on 127.0.0.1:${this.port}`,
    );
  }

  private accepts(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect(this.port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  }

  /**
   * A process ended: acknowledged callbacks it had not answered are lost with it (webhook mode
   * has no resume point); an attempt in flight may have been acknowledged by it.
   */
  processEnded(how: ProcessEnd): void {
    const now = Date.now();
    this.ends.push(now);
    if (how !== 'kill9' && how !== 'fatal' && how !== 'unexpected') return;
    for (const m of this.messages.values()) {
      if (m.replies.length > 0) continue;
      if (!m.record.acked) m.crashAttempts.add(m.record.attempts.length);
      // Only what the process could still have been working on: acknowledged within the
      // answer bound, or its reply being sent. An event acknowledged long before, whose reply
      // was never even tried, was dropped, not lost to the crash.
      else if (m.sendAttempts > 0 || now - (m.ackedAt ?? now) <= WH_TIMINGS.answerBoundMs) {
        m.inCrash = true;
      }
    }
  }

  /** Injects a webhook fault; null when done, else why it was skipped. */
  async inject(fault: WebhookFault): Promise<string | null> {
    const fake = this.fake;
    switch (fault.kind) {
      case 'wh_token_fault':
        // The next reply meets an expired token; fetching a new one meets the fault.
        fake.setTokenFault(fault.fault, fault.count);
        fake.queueSendFaults({ kind: 'token_expired' });
        return null;
      case 'wh_send_fault':
        fake.queueSendFaults(...fault.faults);
        return null;
      case 'wh_redeliver': {
        if (fault.lostAck) {
          fake.webhook.loseAnswers += 1;
          return null;
        }
        const acked = [...this.messages.values()].filter((m) => m.record.acked).slice(-50);
        if (acked.length === 0) return 'no acknowledged callback yet';
        const original = acked[Math.floor(fault.pick * acked.length)]!;
        this.redelivered += 1;
        this.track(
          fake.webhook.redeliver(original.record).then((repeat) => {
            if (!repeat.acked) return;
            original.repeats += 1;
            original.repeatAt = Date.now();
          }),
        );
        return null;
      }
      case 'wh_validation':
      case 'wh_forged':
      case 'wh_timestamp':
      case 'wh_oversized':
      case 'wh_bad_request':
      case 'wh_slow':
      case 'wh_reset': {
        // Requests to the listener: they need a live process that says connected (a restart
        // takes a second or two: node's start, the config, the bind, the token).
        const by = Date.now() + 3_000;
        while (!this.connectedIn(this.lastDoc(), this.livePid())) {
          if (Date.now() > by) return 'not connected';
          await delay(20);
        }
        this.request(fault);
        return null;
      }
    }
  }

  /** Sends the request(s) of a fault; each is judged when its answer comes. */
  private request(fault: Exclude<WebhookFault, { kind: RequestlessKind }>): void {
    const fake = this.fake;
    switch (fault.kind) {
      case 'wh_validation':
        this.track(
          fake.webhook.validation().then(({ status }) => {
            if (status === 0) this.validationsUnreachable += 1;
            else this.validationsAnswered += 1; // a wrong answer is the fake's violation
          }),
        );
        return;
      case 'wh_forged':
        for (const variant of fault.variants) this.forge(variant);
        return;
      case 'wh_timestamp': {
        const body = this.refusedBody();
        const ts = Math.floor(Date.now() / 1000) + fault.skewS;
        const headers = fake.webhook.signedHeaders(body, ts);
        this.expect('timestamp', 401, fake.webhook.raw({ body, headers }));
        return;
      }
      case 'wh_oversized': {
        const body = this.refusedBody('x'.repeat(fault.bytes));
        const headers = fake.webhook.signedHeaders(body);
        if (fault.chunked) headers['transfer-encoding'] = 'chunked';
        this.expect(
          fault.chunked ? 'oversized_chunked' : 'oversized',
          413,
          fake.webhook.raw({ body, headers }),
        );
        return;
      }
      case 'wh_bad_request':
        this.badRequest(fault.variant, fault.pick);
        return;
      case 'wh_slow': {
        const body = this.refusedBody();
        const headers = fake.webhook.signedHeaders(body);
        const waitMs = WH_TIMINGS.requestTimeoutMs + WH_TIMINGS.cutMarginMs + 3_000;
        const stall0 = this.stall();
        const kind = `slow_${fault.end}`;
        const count = this.counter(kind);
        count.sent += 1;
        this.track(
          fake.webhook
            .partial({ body, headers }, fault.sendBytes, fault.end, waitMs)
            .then(({ status, ms }) => {
              const bound =
                WH_TIMINGS.requestTimeoutMs + WH_TIMINGS.cutMarginMs + (this.stall() - stall0);
              if (status === 408 && ms <= bound) {
                count.rejected += 1;
                this.cuts.push(ms);
              } else if (status === 0 && ms < waitMs) {
                count.unreachable += 1; // the connection closed: a process ended meanwhile
              } else {
                this.violations.add(
                  'webhook',
                  `${WH_INSTANCE}: a request stopped mid-body (${fault.end}) got ${status || 'no answer'} after ${ms} ms (expected 408 within ${Math.round(bound)} ms)`,
                );
              }
            }),
        );
        return;
      }
      case 'wh_reset': {
        const body = this.refusedBody();
        const headers = fake.webhook.signedHeaders(body);
        this.resets += 1;
        this.track(
          fake.webhook.partial({ body, headers }, fault.sendBytes, 'reset', 1_000).then(() => {}),
        );
        return;
      }
    }
  }

  private forge(variant: WhForgery): void {
    const webhook = this.fake.webhook;
    const body = this.refusedBody();
    let headers: Record<string, string>;
    let sent = body;
    switch (variant) {
      case 'bad_signature': {
        headers = webhook.signedHeaders(body);
        const sig = headers['x-signature-ed25519']!;
        headers['x-signature-ed25519'] = (sig[0] === '0' ? '1' : '0') + sig.slice(1);
        break;
      }
      case 'no_signature':
        headers = webhook.signedHeaders(body);
        delete headers['x-signature-ed25519'];
        break;
      case 'wrong_key':
        headers = webhook.forgedHeaders(body, FORGER_SECRET);
        break;
      case 'body_changed':
        // A real signature, over another body: the content was changed on the way.
        headers = webhook.signedHeaders(body);
        sent = body.replace('"content":"', '"content":"changed ');
        break;
    }
    this.forged += 1;
    this.expect('forged', 401, webhook.raw({ body: sent, headers }));
  }

  private badRequest(variant: WhBadRequest, pick: number): void {
    const webhook = this.fake.webhook;
    const body = this.refusedBody();
    const headers = webhook.signedHeaders(body);
    switch (variant) {
      case 'method':
        this.expect(
          'method',
          405,
          webhook.raw({ method: WRONG_METHODS[pick % WRONG_METHODS.length]!, body, headers }),
        );
        return;
      case 'unknown_path':
        this.expect(
          'unknown_path',
          404,
          webhook.raw({ path: WRONG_PATHS[pick % WRONG_PATHS.length]!, body, headers }),
        );
        return;
      case 'bad_json': {
        const text = `{"op":0,"d":${body}`; // cut short, correctly signed
        this.expect(
          'bad_json',
          400,
          webhook.raw({ body: text, headers: webhook.signedHeaders(text) }),
        );
        return;
      }
      case 'other_appid':
        this.expect(
          'other_appid',
          403,
          webhook.raw({ body, headers: { ...headers, 'x-bot-appid': '100000001' } }),
        );
        return;
    }
  }

  /** A signed-able dispatch body whose message must never be dispatched. */
  private refusedBody(padding = ''): string {
    const msgId = `ROBOT1.0_refused-${this.forbidden.size + 1}-${randomInt(1e9)}`;
    this.forbidden.add(msgId);
    const d = payloads.c2cMessage({
      id: msgId,
      content: `refused ${this.forbidden.size}${padding}`,
      userOpenid: USERS[0]!,
    });
    return JSON.stringify({
      op: 0,
      id: `C2C_MESSAGE_CREATE:${msgId}`,
      d,
      s: 1,
      t: 'C2C_MESSAGE_CREATE',
    });
  }

  private counter(kind: string): RejectionCount {
    return (this.rejections[kind] ??= { sent: 0, rejected: 0, unreachable: 0 });
  }

  /** A refused request in flight: its status is judged when it is answered. */
  private expect(kind: string, status: number, answer: Promise<CallbackAttempt>): void {
    const count = this.counter(kind);
    count.sent += 1;
    this.track(
      answer.then((a) => {
        if (a.status === status) count.rejected += 1;
        else if (a.status === 0) count.unreachable += 1;
        else {
          this.violations.add(
            'webhook',
            `${WH_INSTANCE}: a ${kind} request got ${a.status} ${a.body.slice(0, 120)} (expected ${status})`,
          );
        }
      }),
    );
  }

  private track(task: Promise<void>): void {
    const tracked = task.catch((err: unknown) => {
      this.violations.add('harness', `${WH_INSTANCE} lane: ${String(err)}`);
    });
    this.inflight.add(tracked);
    void tracked.finally(() => this.inflight.delete(tracked));
  }

  /** The faults stop: nothing scripted is left for the quiet period but queued send faults. */
  quiet(): void {
    this.fake.setTokenFault('none', 0);
    this.fake.webhook.loseAnswers = 0;
  }

  /** Whether the instance is connected in `doc` (the soak's recovery check). */
  static connected(doc: StateDocument): boolean {
    return doc.platforms[WH_INSTANCE]?.state === 'connected';
  }

  /** Acknowledged, unanswered, no code, not lost in a crash. */
  private owed(m: WhMessage): boolean {
    if (!m.record.acked || m.replies.length > 0 || m.failedCode !== null || m.inCrash) {
      return false;
    }
    const ackIndex = m.record.attempts.findIndex((a) => a.status >= 200 && a.status < 300);
    return !m.crashAttempts.has(ackIndex);
  }

  /** Messages still owed an answer (the soak's drain waits for none). */
  pending(): number {
    let n = 0;
    for (const m of this.messages.values()) if (this.owed(m)) n += 1;
    return n;
  }

  /**
   * A repeat of an event the gateway already took (a retry after a lost ack, a redelivery
   * after the ack) must be dropped by the dedupe, not handled again (the platform's msg_seq
   * dedupe would hide a second reply). Only judged when no process ended between the first
   * attempt and the last repeat: one that died before answering leaves it to be handled.
   */
  private undropped(m: WhMessage): boolean {
    if (m.repeats === 0 || m.dropped >= m.repeats || m.replies.length === 0) return false;
    return !this.ends.some((end) => end >= m.sentAt && end <= m.repeatAt);
  }

  /** End of run: every acknowledged callback accounted for. */
  finalChecks(now: number): void {
    for (const m of this.messages.values()) {
      if (!this.undropped(m)) continue;
      this.violations.add(
        'duplicate',
        `${WH_INSTANCE}: ${m.msgId} reached the gateway ${m.repeats + 1} times and was dropped as a duplicate ${m.dropped} times: handled more than once`,
        this.runTime(now),
      );
    }
    for (const m of this.messages.values()) {
      if (!this.owed(m)) continue;
      this.violations.add(
        'delivery',
        `${WH_INSTANCE}: ${m.msgId} acknowledged (attempt ${m.record.attempts.length}) but never answered and no failure logged`,
        this.runTime(now),
      );
    }
  }

  stats(): WhStats {
    const list = [...this.messages.values()];
    const acked = list.filter((m) => m.record.acked);
    const unanswered = acked.filter((m) => m.replies.length === 0 && m.failedCode === null);
    return {
      pushed: list.length,
      acknowledged: acked.length,
      answered: list.filter((m) => m.replies.length > 0).length,
      answered_twice: list.filter((m) => m.replies.length > 1).length,
      handled_twice: list.filter((m) => m.seqs.size > 1 || this.undropped(m)).length,
      repeats_dropped: list.reduce((n, m) => n + Math.min(m.dropped, m.repeats), 0),
      failed_with_code: list.filter((m) => m.replies.length === 0 && m.failedCode !== null).length,
      lost_in_crash: unanswered.filter((m) => !this.owed(m)).length,
      never_answered: unanswered.filter((m) => this.owed(m)).length,
      not_acknowledged: list.length - acked.length,
      retried: list.filter((m) => m.record.attempts.length > 1).length,
      acks_lost: this.fake.webhook.callbacks.reduce(
        (n, c) => n + c.attempts.filter((a) => a.lost !== undefined).length,
        0,
      ),
      redelivered_after_ack: this.redelivered,
      validations: { answered: this.validationsAnswered, unreachable: this.validationsUnreachable },
      rejections: this.rejections,
      answer_max_ms: this.answerMs.length === 0 ? null : Math.max(...this.answerMs),
      cut_max_ms: this.cuts.length === 0 ? null : Math.max(...this.cuts),
      resets_sent: this.resets,
      refusals_logged: this.refusalsLogged,
      listener_probes: this.probes,
      fake_violations: this.fake.violations.length,
    };
  }

  /** Stops the retries, waits for requests in flight, closes the fake; its violations count. */
  async close(): Promise<void> {
    this.closed = true;
    this.fake.webhook.retry = { attempts: 0, delayMs: 0 };
    await Promise.race([Promise.allSettled([...this.inflight, this.probe]), delay(5_000)]);
    for (const v of this.fake.violations) {
      this.violations.add('protocol', `${WH_INSTANCE}: ${v.kind}: ${v.detail}`, this.runTime(v.at));
    }
    await this.fake.close();
  }
}
