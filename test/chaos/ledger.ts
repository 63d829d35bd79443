/**
 * The delivery invariant: every message the fake delivered, and the client acknowledged
 * (a heartbeat or a Resume carrying a seq at or past it), reaches the handler exactly once:
 * one echo reply accepted at the fake's send endpoint, or a log line with an error code for
 * that event. The fake knows which session each dispatch went out on and what the client
 * acknowledged on it, so events lost because the session was re-identified (never
 * acknowledged) are not owed, and events the client acknowledged but dropped are caught.
 */
import type { Violations } from './violations.js';

/** Why a gateway process ended. */
export type ProcessEnd = 'kill9' | 'fatal' | 'stop' | 'unexpected';

interface Message {
  msgId: string;
  /** The conversation (user openid): the gateway handles one conversation in order. */
  chat: string;
  /** When the first copy was dispatched (epoch ms). */
  at: number;
  copies: number;
  delivered: boolean;
  /** First acknowledgement by the client, with the process that made it. */
  claimAt: number | null;
  claimPid: number | null;
  /** Send requests for this msg_id, the msg_seq of each, and the accepted ones. */
  sendRequests: number;
  sendPid: number | null;
  firstSendAt: number | null;
  seqs: Set<number>;
  accepted: number;
  failureCode: string | null;
  /** Violations already reported for this message. */
  reported: Set<string>;
}

interface SessionLog {
  /** seq → msg_id of the message dispatches of this session. */
  bySeq: Map<number, string>;
  /** Delivered seqs not yet acknowledged, ascending. */
  unclaimed: number[];
  maxClaim: number;
}

export interface LedgerStats {
  dispatched: number;
  redeliveries: number;
  delivered: number;
  owed: number;
  replied: number;
  failedWithCode: number;
  lostInCrash: number;
  /** Delivered but never acknowledged and never answered: lost with a re-identified session. */
  notOwedUnanswered: number;
  neverDelivered: number;
  duplicateReplies: number;
  handledTwice: number;
}

export class DeliveryLedger {
  private readonly messages = new Map<string, Message>();
  private readonly sessions = new Map<string, SessionLog>();
  private readonly ends = new Map<number, { at: number; how: ProcessEnd }>();
  private readonly violations: Violations;

  constructor(
    violations: Violations,
    /** Epoch ms → ms since the run's start. */
    private readonly runTime: (epochMs: number) => number,
    /** How long an acknowledged event may take to be answered before it counts as lost. */
    private readonly answerWithinMs: number,
  ) {
    this.violations = violations;
  }

  /** A message dispatch the fake created (first copy or a redelivery of the same msg_id). */
  dispatched(msgId: string, chat: string, sessionId: string, seq: number, at: number): void {
    let message = this.messages.get(msgId);
    if (message === undefined) {
      message = {
        msgId,
        chat,
        at,
        copies: 0,
        delivered: false,
        claimAt: null,
        claimPid: null,
        sendRequests: 0,
        sendPid: null,
        firstSendAt: null,
        seqs: new Set(),
        accepted: 0,
        failureCode: null,
        reported: new Set(),
      };
      this.messages.set(msgId, message);
    }
    message.copies += 1;
    this.session(sessionId).bySeq.set(seq, msgId);
  }

  /** The fake wrote dispatch `seq` of `sessionId` to a socket (first delivery or replay). */
  delivered(sessionId: string, seq: number): void {
    const log = this.sessions.get(sessionId);
    const msgId = log?.bySeq.get(seq);
    if (log === undefined || msgId === undefined) return;
    const message = this.messages.get(msgId);
    if (message !== undefined) message.delivered = true;
    if (seq > log.maxClaim && !log.unclaimed.includes(seq)) {
      log.unclaimed.push(seq);
      log.unclaimed.sort((a, b) => a - b);
    }
  }

  /** The client said (heartbeat or Resume) it has processed `sessionId` up to `seq`. */
  claim(sessionId: string, seq: number, at: number, pid: number | null): void {
    const log = this.sessions.get(sessionId);
    if (log === undefined || seq <= log.maxClaim) return;
    log.maxClaim = seq;
    while (log.unclaimed.length > 0 && log.unclaimed[0]! <= seq) {
      const s = log.unclaimed.shift()!;
      const message = this.messages.get(log.bySeq.get(s)!);
      if (message !== undefined && message.claimAt === null) {
        message.claimAt = at;
        message.claimPid = pid;
      }
    }
  }

  /** A request to the send endpoint replying to `msgId`. */
  sendRequest(
    msgId: string,
    msgSeq: number | null,
    accepted: boolean,
    pid: number | null,
    at: number,
  ): void {
    const message = this.messages.get(msgId);
    if (message === undefined) return;
    message.sendRequests += 1;
    message.sendPid ??= pid;
    message.firstSendAt ??= at;
    if (msgSeq !== null) message.seqs.add(msgSeq);
    if (accepted) message.accepted += 1;
    if (message.accepted > 1) {
      this.report(
        message,
        'duplicate-reply',
        `msg ${msgId}: ${message.accepted} replies accepted by the platform (exactly one expected)`,
      );
    }
    if (message.seqs.size > 1) {
      this.report(
        message,
        'handled-twice',
        `msg ${msgId}: replies with msg_seq ${[...message.seqs].join(', ')}: the handler ran more than once`,
      );
    }
  }

  /** The gateway logged an error code for the event of `msgId` (reply not delivered, ...). */
  failureLogged(msgId: string, code: string): void {
    const message = this.messages.get(msgId);
    if (message !== undefined) message.failureCode ??= code;
  }

  processEnded(pid: number, at: number, how: ProcessEnd): void {
    this.ends.set(pid, { at, how });
  }

  /**
   * Reports acknowledged events with neither a reply nor a logged code. During the run only
   * those acknowledged more than `answerWithinMs` ago by a process still alive are judged;
   * with `final`, every one.
   */
  check(now: number, final: boolean): void {
    for (const message of this.messages.values()) {
      if (message.accepted > 0 || message.failureCode !== null) continue;
      const exempt = this.crashExempt(message);
      if (exempt) continue;
      if (message.claimAt !== null) {
        const alive = message.claimPid === null || !this.ends.has(message.claimPid);
        if (!final && (!alive || now - message.claimAt < this.answerWithinMs)) continue;
        this.report(
          message,
          'lost',
          `msg ${message.msgId}: acknowledged by the client (pid ${message.claimPid ?? '?'}) at ${fmt(this.runTime(message.claimAt))} but never answered and no error code logged`,
        );
      } else if (message.sendRequests > 0 && final) {
        this.report(
          message,
          'reply-vanished',
          `msg ${message.msgId}: the handler replied (${message.sendRequests} send attempt(s)) but the reply was neither accepted nor logged with an error code`,
        );
      }
    }
  }

  /** Messages acknowledged by `pid` that have neither a reply nor a logged code yet. */
  pendingFor(pid: number): number {
    let pending = 0;
    for (const m of this.messages.values()) {
      if (m.claimPid === pid && m.accepted === 0 && m.failureCode === null) pending += 1;
    }
    return pending;
  }

  stats(): LedgerStats {
    const stats: LedgerStats = {
      dispatched: this.messages.size,
      redeliveries: 0,
      delivered: 0,
      owed: 0,
      replied: 0,
      failedWithCode: 0,
      lostInCrash: 0,
      notOwedUnanswered: 0,
      neverDelivered: 0,
      duplicateReplies: 0,
      handledTwice: 0,
    };
    for (const m of this.messages.values()) {
      stats.redeliveries += m.copies - 1;
      if (m.delivered) stats.delivered += 1;
      else stats.neverDelivered += 1;
      if (m.claimAt !== null) stats.owed += 1;
      if (m.accepted > 0) stats.replied += 1;
      else if (m.failureCode !== null) stats.failedWithCode += 1;
      else if (this.crashExempt(m)) stats.lostInCrash += 1;
      else if (m.delivered && m.claimAt === null) stats.notOwedUnanswered += 1;
      if (m.accepted > 1) stats.duplicateReplies += 1;
      if (m.seqs.size > 1) stats.handledTwice += 1;
    }
    return stats;
  }

  /**
   * Unanswered because the process holding it was killed or died of a fatal error while the
   * event was still in flight: the gateway keeps no inbound queue across processes, by
   * design. In flight means: its reply was being sent (less than `answerWithinMs` before the
   * death), or it was waiting in its conversation's queue, which is first in, first out: a
   * later message of the same chat answered by that process proves it was not waiting but
   * lost. An event acknowledged `answerWithinMs` before the death was not in flight either.
   */
  private crashExempt(message: Message): boolean {
    if (message.accepted > 0 || message.failureCode !== null) return false;
    const pid = message.claimPid ?? message.sendPid;
    if (pid === null) return false;
    const end = this.ends.get(pid);
    if (end === undefined || (end.how !== 'kill9' && end.how !== 'fatal')) return false;
    if (message.firstSendAt !== null) return end.at - message.firstSendAt < this.answerWithinMs;
    if (this.overtaken(message, pid)) return false;
    return message.claimAt === null || end.at - message.claimAt < this.answerWithinMs;
  }

  /** A later message of the same chat got a reply attempt from `pid`. */
  private overtaken(message: Message, pid: number): boolean {
    for (const other of this.messages.values()) {
      if (other.chat === message.chat && other.at > message.at && other.sendPid === pid) {
        return true;
      }
    }
    return false;
  }

  private session(sessionId: string): SessionLog {
    let log = this.sessions.get(sessionId);
    if (log === undefined) {
      log = { bySeq: new Map(), unclaimed: [], maxClaim: 0 };
      this.sessions.set(sessionId, log);
    }
    return log;
  }

  private report(message: Message, what: string, detail: string): void {
    if (message.reported.has(what)) return;
    message.reported.add(what);
    this.violations.add('delivery', detail);
  }
}

function fmt(ms: number): string {
  return `+${(ms / 1000).toFixed(3)}s`;
}
