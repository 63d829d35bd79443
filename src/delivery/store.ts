/**
 * The delivery store (DESIGN §11, docs/delivery.md): one SQLite database in WAL mode next to
 * the state file, holding what a restart needs to lose nothing and answer nothing twice:
 *
 * - `answered_groups`: ids of events handled, one row per group commit holding every id it
 *   answered (an event costs an append in memory, not an indexed row: the set is read from
 *   disk only at open); a group is kept while any of its ids is within `remember_ms` and
 *   within the newest `max_entries`, and deleted whole;
 * - `outbox`: the replies of an event, written before their first send attempt and deleted
 *   when the event is answered (what is left at start was in flight at a crash);
 * - `resume_points`: per instance, the platform session and the handled watermark.
 *
 * Writes are queued and committed together in one transaction (group commit): an event costs
 * a few row writes, never a commit of its own. A write someone waits for (a reply's intent,
 * before its first send) is committed at the next turn of the event loop; answered ids and
 * resume points, which nobody waits for, ride on that commit or at most LAZY_COMMIT_MS later. With
 * `sync: normal` (the default) a commit is a write into the WAL, which survives the process
 * being killed; only a power loss can take back the last commits (`sync: full` adds an fsync
 * per commit). A write that fails breaks the store for good: every later write rejects with
 * the same GW_ERR_DELIVERY_STORE_WRITE (exit 70), because a durable copy that silently
 * stopped being written would promise what it cannot keep.
 */
import { chmodSync, closeSync, fsync, mkdirSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { Logger } from 'pino';
import type { ChatType, ResumePoint } from '../adapters/contract.js';
import { GatewayError, registerErrorCodes } from '../errors.js';
import { IdWindow } from '../util/id-window.js';

registerErrorCodes({
  GW_ERR_DELIVERY_STORE_OPEN: { kind: 'internal', retryable: false },
  GW_ERR_DELIVERY_STORE_WRITE: { kind: 'internal', retryable: true },
});

/** How often expired `answered` rows are deleted (at most; it rides on a commit). */
const PRUNE_INTERVAL_MS = 1_000;
/**
 * How long an answered id or a resume point may wait for a commit when no write anyone waits
 * for comes first. A commit costs about 50 µs whatever it holds (bench: one per turn of a busy
 * loop took 14 % of the pipeline's time), and a crash inside this window loses nothing: the
 * event is replayed from the older resume point and answered again with the same idempotency
 * keys, its unsent replies are still in the outbox (docs/delivery.md).
 */
const LAZY_COMMIT_MS = 5;

export interface DeliveryStoreOptions {
  path: string;
  /** How long an answered event id is remembered (`delivery.remember_ms`). */
  rememberMs: number;
  /** At most this many answered ids are kept (`delivery.max_entries`). */
  maxEntries: number;
  /** `normal`: durable across process crashes; `full`: across power loss too. */
  sync: 'normal' | 'full';
  /** A resume point older than this at open is `stale` (`delivery.resume_max_age_ms`). */
  resumeMaxAgeMs: number;
  log: Logger;
  now?: () => number;
  /** Called once when a commit fails: the gateway ends (exit 70). */
  onFailure?: (error: GatewayError) => void;
}

/** A reply written before its first send attempt and not yet known to be delivered. */
export interface PendingReply {
  eventId: string;
  instance: string;
  chat: { type: ChatType; id: string };
  reply: Record<string, unknown>;
  ordinal: number;
  text: string;
}

export type StoreHealth = 'ok' | 'failed';

/** A resume point to write at the next commit (serialized then, once per batch). */
interface ResumeWrite {
  session: Record<string, unknown>;
  position: number | null;
}

/** Where the `answered_groups` rows start after a prune, and how many ids they hold. */
interface PruneResult {
  index: number;
  rows: number;
}

type Op =
  { kind: 'dropOutbox'; eventId: string } | { kind: 'intent'; reply: PendingReply; at: number };

/** One `answered_groups` row as kept in memory: enough to decide its pruning. */
interface Group {
  id: number;
  /** Commit time: every id in the group was answered at or before it. */
  at: number;
  /** How many ids it holds. */
  n: number;
}

interface Statements {
  answerGroup: BetterSqlite3.Statement;
  dropOutbox: BetterSqlite3.Statement;
  intent: BetterSqlite3.Statement;
  resume: BetterSqlite3.Statement;
  pruneGroups: BetterSqlite3.Statement;
}

/**
 * `outbox` and `resume_points` are WITHOUT ROWID tables: each is one b-tree keyed by its
 * primary key, so a reply's intent touches one page, not a table page and an index page.
 * With the page size below, a commit of one intent, the previous event's answered group and
 * the resume point (the echo path at a moderate rate) took 58 → 41 µs of CPU and 131 → 52 µs
 * of wall time, the wall time being what the event loop waits (`node
 * dist/bench/store-commit.js`, median of 5 interleaved rounds).
 */
export const STORE_TABLES: Record<string, string> = {
  answered_groups:
    '(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, n INTEGER NOT NULL, ids TEXT NOT NULL)',
  outbox:
    '(event_id TEXT NOT NULL, ordinal INTEGER NOT NULL, instance TEXT NOT NULL, ' +
    'chat_type TEXT NOT NULL, chat_id TEXT NOT NULL, reply TEXT NOT NULL, text TEXT NOT NULL, ' +
    'at INTEGER NOT NULL, PRIMARY KEY (event_id, ordinal)) WITHOUT ROWID',
  resume_points:
    '(instance TEXT PRIMARY KEY, session TEXT NOT NULL, position INTEGER, at INTEGER NOT NULL) WITHOUT ROWID',
};

/**
 * Pages of a new database: the commits on the hot path write a few rows each, and every page
 * they touch is written whole into the WAL and again at the checkpoint, so 1 KiB pages
 * instead of SQLite's 4 KiB. A large answered group costs a little more CPU for it (250 ids:
 * 104 → 113 µs, wall time 290 → 230 µs; `--group 250`). An existing database keeps its size.
 */
export const STORE_PAGE_SIZE = 1024;
/** WAL pages between checkpoints: 4 MiB, as SQLite's default of 1,000 pages of 4 KiB. */
const WAL_AUTOCHECKPOINT_PAGES = 4096;
/**
 * Commits between two fsyncs of the WAL on libuv's thread pool (sync `normal`). With
 * synchronous=NORMAL nothing flushes the WAL between checkpoints, and SQLite runs the
 * checkpoint inside the commit that fills the WAL, on the event loop: it began with an fsync
 * of up to 4 MiB, 13-23 ms on the bench VM, every 1.5 s at 1,000 replies/s, and a busy
 * gateway took hundreds of ms to catch up on each. Flushed ahead in the background, the
 * checkpoint's own fsync finds at most this many commits' pages left to write.
 */
export const WAL_FLUSH_EVERY_COMMITS = 64;

/** A caller of flush() (or writeIntents), settled by the commit that covers it. */
interface Waiter {
  resolve: () => void;
  reject: (e: GatewayError) => void;
}

/** The store's file for a state file: `gateway_state.json` → `gateway_state.delivery.db`. */
export function deliveryStorePath(statePath: string): string {
  return `${statePath.replace(/\.json$/, '')}.delivery.db`;
}

/**
 * Creates the tables; a table an earlier version created with another layout (a rowid
 * `outbox` or `resume_points`) is copied into the current one, in one transaction.
 */
function createTables(db: BetterSqlite3.Database): void {
  const existing = new Map(
    (
      db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all() as Array<{
        name: string;
        sql: string;
      }>
    ).map((t) => [t.name, t.sql]),
  );
  db.transaction(() => {
    for (const [name, columns] of Object.entries(STORE_TABLES)) {
      const sql = existing.get(name);
      if (sql === undefined) {
        db.exec(`CREATE TABLE ${name} ${columns}`);
      } else if (/WITHOUT ROWID/i.test(columns) && !/WITHOUT ROWID/i.test(sql)) {
        db.exec(`CREATE TABLE ${name}_new ${columns}`);
        db.exec(`INSERT INTO ${name}_new SELECT * FROM ${name}`);
        db.exec(`DROP TABLE ${name}`);
        db.exec(`ALTER TABLE ${name}_new RENAME TO ${name}`);
      }
    }
  })();
}

/**
 * A database written before `answered_groups` has one `answered` row per id: they become one
 * group (its time the newest row's, so no id is remembered shorter) and the table goes, in
 * one transaction, so no answered id is lost by the upgrade.
 */
function migrateAnsweredRows(db: BetterSqlite3.Database): void {
  const old = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'answered'")
    .get();
  if (old === undefined) return;
  db.transaction(() => {
    const rows = db.prepare('SELECT event_id, at FROM answered ORDER BY at ASC').all() as Array<{
      event_id: string;
      at: number;
    }>;
    if (rows.length > 0) {
      db.prepare('INSERT INTO answered_groups (at, n, ids) VALUES (?, ?, ?)').run(
        rows[rows.length - 1]!.at,
        rows.length,
        JSON.stringify(rows.map((r) => r.event_id)),
      );
    }
    db.exec('DROP TABLE answered');
  })();
}

export class DeliveryStore {
  readonly path: string;
  private readonly db: BetterSqlite3.Database;
  private readonly st: Statements;
  /**
   * One batch as one transaction, built once: better-sqlite3's `transaction()` makes four
   * wrapper functions and defines five properties on each every time it is called, which in a
   * commit per event was a third of the commit's CPU (docs/performance.md).
   */
  private readonly writeBatch: (
    ops: readonly Op[],
    resumeWrites: ReadonlyMap<string, ResumeWrite>,
    answered: readonly string[],
    now: number,
  ) => readonly [Group | null, PruneResult | null];
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly rememberMs: number;
  private readonly maxEntries: number;
  private readonly onFailure: (error: GatewayError) => void;
  /** Answered ids in memory (the durable rows' hot copy), loaded at open. */
  private readonly answeredIds: IdWindow;
  private readonly points = new Map<string, ResumePoint>();
  private readonly pending: PendingReply[];
  private ops: Op[] = [];
  /** Serialized once per batch at commit, not once per call. */
  private resumeWrites = new Map<string, ResumeWrite>();
  /** Ids answered since the last commit, in order: the next `answered_groups` row. */
  private answeredBatch: string[] = [];
  /** The `answered_groups` rows on disk, oldest first from `groupsHead`. */
  private groups: Group[] = [];
  private groupsHead = 0;
  /** Ids held by the groups on disk (an id answered twice counts twice). */
  private rows = 0;
  private waiters: Waiter[] = [];
  private scheduled = false;
  private lazyTimer: NodeJS.Timeout | null = null;
  private failure: GatewayError | null = null;
  private lastPruneMs = 0;
  private closed = false;
  private commits = 0;
  /** The WAL, open for background fsyncs; null with sync `full` (each commit flushes it). */
  private walFd: number | null;
  private walFlushing = false;
  private commitsSinceWalFlush = 0;
  private walFlushes = 0;

  private constructor(
    options: DeliveryStoreOptions,
    db: BetterSqlite3.Database,
    walFd: number | null,
  ) {
    this.path = options.path;
    this.db = db;
    this.walFd = walFd;
    this.now = options.now ?? Date.now;
    this.log = options.log;
    this.rememberMs = options.rememberMs;
    this.maxEntries = options.maxEntries;
    this.onFailure = options.onFailure ?? (() => undefined);
    this.answeredIds = new IdWindow(options.maxEntries);
    this.st = {
      answerGroup: db.prepare('INSERT INTO answered_groups (at, n, ids) VALUES (?, ?, ?)'),
      dropOutbox: db.prepare('DELETE FROM outbox WHERE event_id = ?'),
      intent: db.prepare(
        'INSERT OR REPLACE INTO outbox (event_id, ordinal, instance, chat_type, chat_id, reply, text, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      resume: db.prepare(
        'INSERT OR REPLACE INTO resume_points (instance, session, position, at) VALUES (?, ?, ?, ?)',
      ),
      pruneGroups: db.prepare('DELETE FROM answered_groups WHERE id <= ?'),
    };
    this.writeBatch = db.transaction(
      (
        ops: readonly Op[],
        resumeWrites: ReadonlyMap<string, ResumeWrite>,
        answered: readonly string[],
        now: number,
      ) => {
        for (const op of ops) {
          if (op.kind === 'dropOutbox') {
            this.st.dropOutbox.run(op.eventId);
          } else {
            const r = op.reply;
            this.st.intent.run(
              r.eventId,
              r.ordinal,
              r.instance,
              r.chat.type,
              r.chat.id,
              JSON.stringify(r.reply),
              r.text,
              op.at,
            );
          }
        }
        for (const [instance, point] of resumeWrites) {
          this.st.resume.run(instance, JSON.stringify(point.session), point.position, now);
        }
        let added: Group | null = null;
        if (answered.length > 0) {
          const info = this.st.answerGroup.run(now, answered.length, JSON.stringify(answered));
          added = { id: Number(info.lastInsertRowid), at: now, n: answered.length };
        }
        let pruned: PruneResult | null = null;
        if (now - this.lastPruneMs >= PRUNE_INTERVAL_MS) {
          this.lastPruneMs = now;
          pruned = this.prune(now, added?.n ?? 0);
        }
        return [added, pruned] as const;
      },
    );
    const now = this.now();
    const cutoff = now - this.rememberMs;
    // Row by row: the whole table at once was a few MB of JSON text held at the same time.
    const groups = db
      .prepare('SELECT id, at, n, ids FROM answered_groups ORDER BY id ASC')
      .iterate() as IterableIterator<Group & { ids: string }>;
    for (const g of groups) {
      this.groups.push({ id: g.id, at: g.at, n: g.n });
      this.rows += g.n;
      // Expired groups stay on disk until the first prune; they answer nothing.
      if (g.at < cutoff) continue;
      // Each id takes its group's commit time: remembered a little longer, never shorter.
      for (const id of JSON.parse(g.ids) as string[]) this.answeredIds.add(id, g.at);
    }
    const points = db
      .prepare('SELECT instance, session, position, at FROM resume_points')
      .all() as Array<{
      instance: string;
      session: string;
      position: number | null;
      at: number;
    }>;
    for (const p of points) {
      const ageMs = Math.max(0, now - p.at);
      this.points.set(p.instance, {
        session: JSON.parse(p.session) as Record<string, unknown>,
        position: p.position,
        ageMs,
        stale: ageMs > options.resumeMaxAgeMs,
      });
    }
    const outbox = db
      .prepare(
        'SELECT event_id, ordinal, instance, chat_type, chat_id, reply, text FROM outbox ORDER BY at ASC, event_id ASC, ordinal ASC',
      )
      .all() as Array<{
      event_id: string;
      ordinal: number;
      instance: string;
      chat_type: ChatType;
      chat_id: string;
      reply: string;
      text: string;
    }>;
    this.pending = outbox.map((r) => ({
      eventId: r.event_id,
      instance: r.instance,
      chat: { type: r.chat_type, id: r.chat_id },
      reply: JSON.parse(r.reply) as Record<string, unknown>,
      ordinal: r.ordinal,
      text: r.text,
    }));
  }

  /**
   * Opens (or creates, mode 0600) the database at `options.path`. Throws
   * GW_ERR_DELIVERY_STORE_OPEN when the module cannot load or the file cannot be opened.
   */
  static open(options: DeliveryStoreOptions): DeliveryStore {
    let db: BetterSqlite3.Database | null = null;
    let walFd: number | null = null;
    try {
      mkdirSync(dirname(options.path), { recursive: true, mode: 0o700 });
      // Loaded here, not at import: a gateway with the store off never loads the addon.
      const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
      // No busy wait: only this process writes the file (a lock held by anyone else is a
      // fault to report, not to wait out with the event loop blocked).
      db = new Database(options.path, { timeout: 0 });
      chmodSync(options.path, 0o600);
      // Takes effect only on a database with no page yet (before WAL mode is set).
      db.pragma(`page_size = ${STORE_PAGE_SIZE}`);
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${options.sync === 'full' ? 'FULL' : 'NORMAL'}`);
      db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
      createTables(db);
      migrateAnsweredRows(db);
      // The WAL and shared-memory files exist now; they hold the same data as the database.
      for (const suffix of ['-wal', '-shm']) chmodSync(options.path + suffix, 0o600);
      // SQLite keeps this file (it rewrites it from the start after a checkpoint) until the
      // connection closes; an fsync through a read-only descriptor flushes it all the same.
      walFd = options.sync === 'full' ? null : openSync(options.path + '-wal', 'r');
      return new DeliveryStore(options, db, walFd);
    } catch (err) {
      if (walFd !== null) closeSync(walFd);
      db?.close();
      const errno = (err as { code?: string }).code ?? 'unknown';
      throw new GatewayError(
        'GW_ERR_DELIVERY_STORE_OPEN',
        `cannot open the delivery store ${options.path}: ${errno}: ${(err as Error).message}`,
        { cause: err, details: { path: options.path, errno } },
      );
    }
  }

  get health(): StoreHealth {
    return this.failure === null ? 'ok' : 'failed';
  }

  /** Transactions committed by this process. */
  get commitCount(): number {
    return this.commits;
  }

  /** Background fsyncs of the WAL completed (WAL_FLUSH_EVERY_COMMITS). */
  get walFlushCount(): number {
    return this.walFlushes;
  }

  /** The resume point the previous process left for `instance`, as read at open. */
  resumePoint(instance: string): ResumePoint | null {
    return this.points.get(instance) ?? null;
  }

  /** Replies that were written but not known delivered when the previous process ended. */
  takePending(): PendingReply[] {
    return this.pending.splice(0);
  }

  /**
   * Whether the answered set remembers every id at least `windowMs` after it was answered
   * and at least the newest `entries` answered ids: then it also serves as the pipeline's
   * dedupe window (one id window per event instead of two).
   */
  covers(windowMs: number, entries: number): boolean {
    return this.rememberMs >= windowMs && this.maxEntries >= entries;
  }

  /** Whether `eventId` was answered within `remember_ms` (this process or an earlier one). */
  isAnswered(eventId: string): boolean {
    const at = this.answeredIds.addedAt(eventId);
    return at !== undefined && this.now() - at < this.rememberMs;
  }

  /**
   * Writes the replies of one event before their first send attempt; resolves once they are
   * committed, rejects with GW_ERR_DELIVERY_STORE_WRITE.
   */
  writeIntents(replies: PendingReply[]): Promise<void> {
    const at = this.now();
    for (const reply of replies) this.ops.push({ kind: 'intent', reply, at });
    return this.committed();
  }

  /**
   * Records that `eventId` is handled; committed with the next batch. `outbox`: the event has
   * outbox rows (its replies were written), which go in the same transaction; false spares
   * the delete of rows that do not exist (most events of a busy gateway reply nothing or are
   * replays).
   */
  markAnswered(eventId: string, outbox = true): void {
    this.answeredIds.add(eventId, this.now());
    this.answeredBatch.push(eventId);
    if (outbox) this.ops.push({ kind: 'dropOutbox', eventId });
    this.scheduleLazy();
  }

  /** Sets the resume point of `instance`; only the last one per batch is written. */
  saveResumePoint(
    instance: string,
    session: Record<string, unknown>,
    position: number | null,
  ): void {
    this.resumeWrites.set(instance, { session, position });
    this.scheduleLazy();
  }

  /** Resolves once everything queued so far is committed. */
  flush(): Promise<void> {
    if (
      this.ops.length === 0 &&
      this.answeredBatch.length === 0 &&
      this.resumeWrites.size === 0 &&
      this.waiters.length === 0
    ) {
      return this.failure === null ? Promise.resolve() : Promise.reject(this.failure);
    }
    return this.committed();
  }

  /** Commits what is queued and closes the database. */
  close(): void {
    if (this.closed) return;
    this.commit();
    this.closed = true;
    if (!this.walFlushing) this.closeWal();
    try {
      this.db.close();
    } catch (err) {
      this.log.warn({ err: String(err) }, 'delivery store close failed');
    }
  }

  private committed(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const promise = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.schedule();
    return promise;
  }

  /** A commit within LAZY_COMMIT_MS, unless one is scheduled sooner. */
  private scheduleLazy(): void {
    if (this.scheduled || this.lazyTimer !== null || this.closed) return;
    this.lazyTimer = setTimeout(() => {
      this.lazyTimer = null;
      this.commit();
    }, LAZY_COMMIT_MS);
  }

  /** A commit at the next turn of the event loop (someone waits for it). */
  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    if (this.lazyTimer !== null) {
      clearTimeout(this.lazyTimer);
      this.lazyTimer = null;
    }
    // One commit per turn of the event loop, after everything this turn queued.
    setImmediate(() => {
      this.scheduled = false;
      this.commit();
    });
  }

  /** One transaction with everything queued; settles the waiters. */
  private commit(): void {
    if (this.lazyTimer !== null) {
      clearTimeout(this.lazyTimer);
      this.lazyTimer = null;
    }
    const ops = this.ops;
    const answered = this.answeredBatch;
    const resumeWrites = this.resumeWrites;
    const waiters = this.waiters;
    this.ops = [];
    this.answeredBatch = [];
    this.resumeWrites = new Map();
    this.waiters = [];
    if (this.failure !== null || this.closed) {
      const error = this.failure ?? this.closedError();
      for (const w of waiters) w.reject(error);
      return;
    }
    if (ops.length === 0 && answered.length === 0 && resumeWrites.size === 0) {
      for (const w of waiters) w.resolve();
      return;
    }
    const now = this.now();
    let group: Group | null = null;
    let pruneTo: PruneResult | null = null;
    try {
      [group, pruneTo] = this.writeBatch(ops, resumeWrites, answered, now);
      this.commits += 1;
    } catch (err) {
      this.fail(err, waiters);
      return;
    }
    if (this.walFd !== null && ++this.commitsSinceWalFlush >= WAL_FLUSH_EVERY_COMMITS) {
      this.flushWalAhead(this.walFd);
    }
    // The in-memory copy of the groups follows only what was committed.
    if (pruneTo !== null) {
      this.groupsHead = pruneTo.index;
      this.rows = pruneTo.rows;
      if (this.groupsHead > 1024 && this.groupsHead * 2 > this.groups.length) {
        this.groups = this.groups.slice(this.groupsHead);
        this.groupsHead = 0;
      }
    }
    if (group !== null) {
      this.groups.push(group);
      this.rows += group.n;
    }
    for (const w of waiters) w.resolve();
  }

  /** Records a failed write and rejects `waiters` with it; the gateway ends with exit 70. */
  private fail(err: unknown, waiters: readonly Waiter[] = []): void {
    const errno = (err as { code?: string }).code ?? 'unknown';
    const failure = new GatewayError(
      'GW_ERR_DELIVERY_STORE_WRITE',
      `cannot write the delivery store ${this.path}: ${errno}`,
      { cause: err, details: { path: this.path, errno } },
    );
    this.failure = failure;
    this.log.error({ code: failure.code, path: this.path, errno }, failure.message);
    for (const w of waiters) w.reject(failure);
    this.onFailure(failure);
  }

  /**
   * fsyncs the WAL on libuv's thread pool, unless a flush is still out. A failure is the
   * store's: Linux reports a failed writeback to one fsync only, so SQLite's own fsync at the
   * next checkpoint would not see it and would take lost pages for durable ones.
   */
  private flushWalAhead(fd: number): void {
    if (this.walFlushing) return;
    this.walFlushing = true;
    this.commitsSinceWalFlush = 0;
    fsync(fd, (err) => {
      this.walFlushing = false;
      if (this.closed) {
        // close() left the descriptor to this callback: closed under a running fsync, its
        // number could be reused by another file before the fsync ran.
        this.closeWal();
        return;
      }
      if (err !== null) {
        if (this.failure === null) this.fail(err);
        return;
      }
      this.walFlushes += 1;
    });
  }

  private closeWal(): void {
    if (this.walFd === null) return;
    try {
      closeSync(this.walFd);
    } catch {
      // A read-only descriptor: nothing was left to write through it.
    }
    this.walFd = null;
  }

  /**
   * Deletes the oldest groups that no longer hold anything to remember (inside the commit's
   * transaction): those whose commit time is past `remember_ms`, and those wholly beyond the
   * newest `max_entries` ids. A group straddling the count bound is kept: at open the
   * in-memory set keeps the newest `max_entries` of what is read, so the disk holds at most
   * `max_entries` plus one group. Returns where the groups now start, or null when none went.
   */
  private prune(now: number, added: number): PruneResult | null {
    const cutoff = now - this.rememberMs;
    let index = this.groupsHead;
    let rows = this.rows + added;
    while (index < this.groups.length) {
      const g = this.groups[index]!;
      if (g.at >= cutoff && rows - g.n < this.maxEntries) break;
      rows -= g.n;
      index += 1;
    }
    if (index === this.groupsHead) return null;
    this.st.pruneGroups.run(this.groups[index - 1]!.id);
    return { index, rows };
  }

  private closedError(): GatewayError {
    return new GatewayError('GW_ERR_DELIVERY_STORE_WRITE', 'delivery store already closed', {
      details: { path: this.path, errno: 'closed' },
    });
  }
}
