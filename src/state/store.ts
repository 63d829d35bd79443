import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { GatewayError, isGatewayError } from '../errors.js';
import { processStartTime } from '../util/proc.js';
import { makeDirectory } from '../util/mkdir.js';
import { replaceFileDurably } from './atomic-write.js';
import { checkStatePath } from './paths.js';
import {
  type BrokerStatus,
  STATE_SCHEMA_VERSION,
  type GatewayStatus,
  type PlatformStatus,
  type StateDocument,
} from './schema.js';

export interface StateStoreOptions {
  path: string;
  heartbeatIntervalMs: number;
  log: Logger;
  /** Injected clock for deterministic timestamps; defaults to Date.now. */
  now?: () => number;
}

/**
 * The single writer of gateway_state.json. Callers change the in-memory document and call
 * `commit()`, which snapshots it immediately and queues an atomic write (temp file, fsync,
 * rename, fsync of the directory). Writes happen one at a time in commit order, so the file
 * moves forward only. After one failed write the store is broken: every later commit rejects
 * with the same error, because a state file that silently stopped updating is exactly the lie
 * we exist to prevent.
 */
export class StateStore {
  readonly path: string;
  private readonly doc: StateDocument;
  private readonly log: Logger;
  private readonly now: () => number;
  private chain: Promise<void> = Promise.resolve();
  private failure: GatewayError | null = null;
  private dirReady = false;
  private writes = 0;

  constructor(options: StateStoreOptions) {
    this.path = options.path;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    const at = this.iso();
    this.doc = {
      schema_version: STATE_SCHEMA_VERSION,
      pid: process.pid,
      pid_start_time: processStartTime(process.pid),
      started_at: at,
      updated_at: at,
      heartbeat_at: at,
      heartbeat_interval_ms: options.heartbeatIntervalMs,
      write_seq: 0,
      gateway: { state: 'starting', since: at, reason: null, exit_code: null },
      platforms: {},
    };
  }

  iso(): string {
    return new Date(this.now()).toISOString();
  }

  /** A deep copy of the current in-memory document. */
  snapshot(): StateDocument {
    return structuredClone(this.doc);
  }

  get gateway(): Readonly<GatewayStatus> {
    return this.doc.gateway;
  }

  platform(name: string): Readonly<PlatformStatus> | undefined {
    return this.doc.platforms[name];
  }

  /** Number of writes completed successfully (exported as a metric). */
  get writeCount(): number {
    return this.writes;
  }

  setGateway(patch: Partial<GatewayStatus>): void {
    Object.assign(this.doc.gateway, patch);
  }

  setPlatform(name: string, patch: Partial<PlatformStatus>): void {
    const existing = this.doc.platforms[name];
    if (existing) {
      Object.assign(existing, patch);
      return;
    }
    this.doc.platforms[name] = {
      type: name,
      state: 'starting',
      since: this.iso(),
      reconnect_attempt: 0,
      max_reconnect_attempts: null,
      last_error: null,
      last_event_at: null,
      resumable: false,
      detail: null,
      ...patch,
    };
  }

  /** The broker hop's status (handler type nats); see StateDocument.broker. */
  setBroker(status: BrokerStatus): void {
    this.doc.broker = { ...status };
  }

  markHeartbeat(): void {
    this.doc.heartbeat_at = this.iso();
  }

  /**
   * Continues `write_seq` from the file a previous process left, so that readers (and the
   * chaos soak) see it only grow, across restarts too. A missing or unreadable file starts
   * from zero: it is about to be replaced anyway.
   */
  async resumeSequence(): Promise<void> {
    try {
      const previous = JSON.parse(await readFile(this.path, 'utf8')) as { write_seq?: unknown };
      if (typeof previous.write_seq === 'number' && Number.isSafeInteger(previous.write_seq)) {
        this.doc.write_seq = Math.max(this.doc.write_seq, previous.write_seq);
      }
    } catch {
      // Nothing to continue from.
    }
  }

  /**
   * Queues a write of the document as it is now. Resolves once that write is on disk;
   * rejects with `GW_ERR_STATE_WRITE` if it (or any earlier write) failed.
   */
  commit(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.doc.write_seq += 1;
    this.doc.updated_at = this.iso();
    const body = JSON.stringify(this.doc, null, 2) + '\n';
    const seq = this.doc.write_seq;
    const write = this.chain.then(() => this.write(body, seq));
    // The chain itself never rejects, so one failure does not leave an unhandled rejection;
    // the failure is reported through each caller's own promise.
    this.chain = write.catch(() => undefined);
    return write;
  }

  /** Resolves when every queued write has settled (used before exit). */
  async flush(): Promise<void> {
    await this.chain;
    if (this.failure) throw this.failure;
  }

  private async write(body: string, seq: number): Promise<void> {
    if (this.failure) throw this.failure;
    try {
      if (!this.dirReady) {
        await makeDirectory(dirname(this.path), 0o700);
        this.dirReady = true;
      }
      // Again at each write: a symlink planted while we run must not be written through.
      checkStatePath(this.path);
      // Temp file, fsync, rename, fsync of the directory: on disk before commit() resolves.
      await replaceFileDurably(this.path, body, 0o600);
      this.writes += 1;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      this.failure = isGatewayError(err)
        ? err
        : new GatewayError('GW_ERR_STATE_WRITE', `cannot write state file ${this.path}: ${code}`, {
            cause: err,
            details: { path: this.path, errno: code, write_seq: seq },
          });
      // warn: the caller that ends the gateway over it logs the one error line (with errno).
      this.log.warn(
        { code: this.failure.code, path: this.path, errno: code },
        this.failure.message,
      );
      throw this.failure;
    }
  }
}
