/**
 * Invariants on gateway_state.json: it always parses, `write_seq` only grows (across
 * restarts too), it holds no secret, and its `platforms.qqbot.state` follows the truth as
 * the fake server sees it within the bounds of DESIGN §9.
 */
import { readFileSync, statSync } from 'node:fs';
import { ADAPTER_STATES, type AdapterState } from '../../src/adapters/contract.js';
import { GATEWAY_STATES, type StateDocument } from '../../src/state/schema.js';
import type { Violations } from './violations.js';

/** One read of the state file. */
export interface Sample {
  /** Epoch ms of the read. */
  at: number;
  /** The machine's cumulative stall (StallMeter) at the read, in ms. */
  stall: number;
  doc: StateDocument;
}

/**
 * Reads the state file on every `poll()` and checks what a reader may rely on: it parses,
 * has the documented shape, `write_seq` never goes back, no secret appears in it, mode 0600.
 */
export class StateFileWatcher {
  lastSeq = 0;
  reads = 0;
  /** Longest pause between two reads: how late a verdict (and a latency figure) can be. */
  maxGapMs = 0;
  last: Sample | null = null;
  private lastPollAt = 0;
  private seen = false;
  private lastModeCheck = 0;
  private lastText = '';

  constructor(
    readonly path: string,
    private readonly violations: Violations,
    /** Strings that must never appear in the file (client secret, issued tokens). */
    private readonly secrets: () => readonly string[],
  ) {}

  /** Reads and checks the file; returns the sample, or null when there is none to use. */
  poll(now = Date.now(), stall = 0): Sample | null {
    if (this.lastPollAt !== 0) this.maxGapMs = Math.max(this.maxGapMs, now - this.lastPollAt);
    this.lastPollAt = now;
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !this.seen) return null;
      this.violations.add('state-file', `cannot read ${this.path}: ${code ?? String(err)}`);
      return null;
    }
    this.reads += 1;
    this.seen = true;
    let doc: StateDocument;
    try {
      doc = JSON.parse(text) as StateDocument;
    } catch {
      this.violations.add(
        'state-file',
        `unparseable (torn?) state file: ${JSON.stringify(text.slice(0, 120))}`,
      );
      return null;
    }
    if (text !== this.lastText) {
      this.lastText = text;
      this.checkShape(doc);
      for (const secret of this.secrets()) {
        if (secret !== '' && text.includes(secret)) {
          this.violations.add('state-file', 'the state file contains a secret or an access token');
        }
      }
    }
    if (typeof doc.write_seq === 'number') {
      if (doc.write_seq < this.lastSeq) {
        this.violations.add(
          'state-file',
          `write_seq went back from ${this.lastSeq} to ${doc.write_seq} (pid ${doc.pid})`,
        );
      }
      this.lastSeq = Math.max(this.lastSeq, doc.write_seq);
    }
    if (now - this.lastModeCheck >= 1_000) {
      this.lastModeCheck = now;
      try {
        const mode = statSync(this.path).mode & 0o777;
        if (mode !== 0o600) {
          this.violations.add('state-file', `mode ${mode.toString(8)}, expected 600`);
        }
      } catch {
        // Renamed over between the two calls; the next check sees the new file.
      }
    }
    const sample = { at: now, stall, doc };
    this.last = sample;
    return sample;
  }

  private checkShape(doc: StateDocument): void {
    const problems: string[] = [];
    if (doc.schema_version !== 1) problems.push(`schema_version ${String(doc.schema_version)}`);
    if (!Number.isSafeInteger(doc.write_seq)) problems.push('write_seq is not an integer');
    if (!Number.isSafeInteger(doc.pid)) problems.push('pid is not an integer');
    if (!GATEWAY_STATES.includes(doc.gateway?.state)) {
      problems.push(`gateway.state ${JSON.stringify(doc.gateway?.state)}`);
    }
    const qq = doc.platforms?.qqbot;
    if (qq === undefined) {
      problems.push('platforms.qqbot is missing');
    } else {
      if (!ADAPTER_STATES.includes(qq.state))
        problems.push(`qqbot.state ${JSON.stringify(qq.state)}`);
      if (Number.isNaN(Date.parse(qq.since))) problems.push('qqbot.since is not a date');
    }
    if (problems.length > 0) {
      this.violations.add('state-file', `bad shape: ${problems.join('; ')}`);
    }
  }
}

export interface TruthBounds {
  /** READY/RESUMED sent → the file says `connected` (DESIGN: 100 ms + handshake). */
  upMs: number;
  /** Close, reset, op 7, op 9 → the file has left `connected`. */
  closeMs: number;
  /** Half-open or unacknowledged link → the file has left `connected` (1.5 × interval + write). */
  silentMs: number;
}

interface UpEvent {
  conn: number;
  at: number;
  /** StallMeter reading when the event happened. */
  stall0: number;
  pid: number;
  deadline: number;
  what: string;
  satisfied: boolean;
  /** Used up by one connected epoch of the file. */
  consumed: boolean;
}

interface DownEvent {
  conn: number;
  at: number;
  stall0: number;
  pid: number;
  deadline: number;
  cause: string;
}

/** Latency figures (observed at the file, poll interval included). */
export interface TruthStats {
  upChecks: number;
  downChecks: number;
  maxUpLatencyMs: number;
  maxCloseLatencyMs: number;
  maxSilentLatencyMs: number;
  connectedEpochs: number;
  /** How far past its raw bound an expectation was met, excused by machine stall (StallMeter). */
  maxExcusedMs: number;
}

/**
 * Compares the file's `platforms.qqbot.state` with the fake's view of the link:
 * - after READY/RESUMED on a connection, the file says `connected` (with a `since` no earlier
 *   than that frame) within `upMs`, unless the connection died first;
 * - after the fake closed, reset, half-opened or disowned the connection the adapter was
 *   connected on, the file leaves `connected` within the bound of that fault (or shows a new
 *   `connected` epoch that a later READY/RESUMED explains);
 * - every `connected` epoch in the file is explained by a READY/RESUMED the fake sent
 *   before it (never "connected" on a bare socket open).
 * Samples of a process other than the live gateway are ignored (a dead process's last word).
 */
export class ConnectionTruth {
  readonly stats: TruthStats = {
    upChecks: 0,
    downChecks: 0,
    maxUpLatencyMs: 0,
    maxCloseLatencyMs: 0,
    maxSilentLatencyMs: 0,
    connectedEpochs: 0,
    maxExcusedMs: 0,
  };
  /** The connection READY/RESUMED was last sent on, while the fake considers it alive. */
  upConn: number | null = null;
  private upPid: number | null = null;
  private readonly ups: UpEvent[] = [];
  private downs: DownEvent[] = [];
  private readonly epochs = new Set<string>();
  private lastSample: Sample | null = null;

  constructor(
    private readonly violations: Violations,
    readonly bounds: TruthBounds,
    /** Epoch ms → ms since the run's start, for violation times. */
    private readonly runTime: (epochMs: number) => number,
    /** The machine's cumulative stall in ms (StallMeter.read), credited to deadlines. */
    private readonly stall: () => number = () => 0,
  ) {}

  /** The fake sent READY or RESUMED on `conn` while `pid` was the live gateway. */
  up(conn: number, at: number, pid: number, what: string): void {
    this.upConn = conn;
    this.upPid = pid;
    this.ups.push({
      conn,
      at,
      stall0: this.stall(),
      pid,
      deadline: at + this.bounds.upMs,
      what,
      satisfied: false,
      consumed: false,
    });
    // Forget old, settled events so a long run stays small.
    while (this.ups.length > 64 && (this.ups[0]!.satisfied || this.ups[0]!.at < at - 60_000)) {
      this.ups.shift();
    }
  }

  /**
   * The link on `conn` is gone from the fake's point of view, with the bound the file has to
   * follow. Only the connection the adapter was connected on matters.
   */
  down(conn: number, at: number, cause: string, boundMs: number): void {
    if (conn !== this.upConn || this.upPid === null) {
      // A second fault on a link already going down: the client now faces this one (a
      // half-open socket cannot finish the close handshake that op 7 started), so its
      // bound runs from now if that is later.
      for (const d of this.downs) {
        if (d.conn === conn && at + boundMs > d.deadline) {
          d.deadline = at + boundMs;
          d.cause += `, then ${cause}`;
        }
      }
      return;
    }
    this.upConn = null;
    this.downs.push({
      conn,
      at,
      stall0: this.stall(),
      pid: this.upPid,
      deadline: at + boundMs,
      cause,
    });
    // Whatever was owed for this connection's READY is moot now.
    for (const u of this.ups) if (u.conn === conn && !u.satisfied) u.satisfied = true;
  }

  /** The gateway process ended: nothing more is owed by it. */
  processEnded(pid: number): void {
    for (const u of this.ups) if (u.pid === pid) u.satisfied = true;
    this.downs = this.downs.filter((d) => d.pid !== pid);
    if (this.upPid === pid) {
      this.upConn = null;
      this.upPid = null;
    }
  }

  /** Feeds one read of the state file; `livePid` is the running gateway (null: none). */
  sample(sample: Sample, livePid: number | null): void {
    if (this.lastSample === null || sample.at >= this.lastSample.at) this.lastSample = sample;
    const { doc } = sample;
    if (livePid === null || doc.pid !== livePid) return;
    const qq = doc.platforms?.qqbot;
    if (qq === undefined) return;
    const state: AdapterState = qq.state;
    const since = Date.parse(qq.since);

    if (state === 'connected') {
      const epoch = `${doc.pid}:${qq.since}`;
      if (!this.epochs.has(epoch)) {
        this.epochs.add(epoch);
        this.stats.connectedEpochs += 1;
        // The latest unconsumed READY/RESUMED sent to this process before `since`.
        const candidates = this.ups.filter(
          (u) => u.pid === doc.pid && !u.consumed && u.at <= since + 1,
        );
        const explained = candidates[candidates.length - 1];
        if (explained === undefined) {
          this.violations.add(
            'state-truth',
            `the state file says connected since ${qq.since} (pid ${doc.pid}), but the fake sent no READY/RESUMED before that`,
            this.runTime(sample.at),
          );
        } else {
          explained.consumed = true;
        }
      }
    }

    for (const u of this.ups) {
      if (u.satisfied || u.pid !== doc.pid) continue;
      if (state === 'connected' && since >= u.at - 1) {
        u.satisfied = true;
        this.stats.upChecks += 1;
        const latency = sample.at - u.at;
        this.stats.maxUpLatencyMs = Math.max(this.stats.maxUpLatencyMs, latency);
        this.excused(latency - (u.deadline - u.at));
      }
    }

    this.downs = this.downs.filter((d) => {
      if (d.pid !== doc.pid) return true;
      const left =
        state !== 'connected' ||
        (since > d.at && this.ups.some((u) => u.pid === d.pid && u.at > d.at && since >= u.at - 1));
      if (!left) return true;
      this.stats.downChecks += 1;
      const latency = sample.at - d.at;
      this.excused(latency - (d.deadline - d.at));
      if (d.deadline - d.at > this.bounds.closeMs) {
        this.stats.maxSilentLatencyMs = Math.max(this.stats.maxSilentLatencyMs, latency);
      } else {
        this.stats.maxCloseLatencyMs = Math.max(this.stats.maxCloseLatencyMs, latency);
      }
      return false;
    });
  }

  /**
   * Reports expectations whose deadline (plus the machine stall since the event) has passed
   * with a sample taken at or after it. A starved poller (no sample past the deadline yet)
   * delays the verdict, never fakes one.
   */
  tick(describe: (pid: number) => string): void {
    const last = this.lastSample;
    if (last === null) return;
    const due = (deadline: number, stall0: number): boolean => {
      const credit = Math.max(0, last.stall - stall0);
      return deadline + credit <= last.at;
    };
    const credited = (stall0: number): string => {
      const credit = Math.round(Math.max(0, last.stall - stall0));
      return credit > 0 ? ` + ${credit} ms of machine stall` : '';
    };
    for (const u of this.ups) {
      if (u.satisfied || !due(u.deadline, u.stall0)) continue;
      u.satisfied = true;
      this.violations.add(
        'state-truth',
        `the fake sent ${u.what} on connection ${u.conn} but the state file did not say connected within ${this.bounds.upMs} ms${credited(u.stall0)} (${describe(u.pid)})`,
        this.runTime(last.at),
      );
    }
    this.downs = this.downs.filter((d) => {
      if (!due(d.deadline, d.stall0)) return true;
      this.violations.add(
        'state-truth',
        `${d.cause} on connection ${d.conn}, but the state file still said connected ${d.deadline - d.at} ms${credited(d.stall0)} later (${describe(d.pid)})`,
        this.runTime(last.at),
      );
      return false;
    });
  }

  private excused(overMs: number): void {
    if (overMs > 0) this.stats.maxExcusedMs = Math.max(this.stats.maxExcusedMs, overMs);
  }

  /** Expectations still open (for the end of the run). */
  get pending(): number {
    return this.ups.filter((u) => !u.satisfied).length + this.downs.length;
  }
}
