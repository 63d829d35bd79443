/**
 * Typed events of the fake plus promise helpers, so tests wait for what happens instead of
 * sleeping. Every pending wait owns one timer, cleared when it settles.
 */
import { EventEmitter } from 'node:events';
import type { FakeQQEventName, FakeQQEvents } from './records.js';

/** Error of a wait: `code` is `FAKE_QQ_WAIT_TIMEOUT` or `FAKE_QQ_CLOSED`. */
export class FakeWaitError extends Error {
  constructor(
    message: string,
    readonly code: 'FAKE_QQ_WAIT_TIMEOUT' | 'FAKE_QQ_CLOSED',
  ) {
    super(message);
    this.name = 'FakeWaitError';
  }
}

type Listener<K extends FakeQQEventName> = (payload: FakeQQEvents[K]) => void;

/** Default timeout of `waitFor` and `until`. */
export const DEFAULT_WAIT_MS = 2000;

/** Event hub of one fake server. */
export class FakeEvents {
  private readonly emitter = new EventEmitter();
  /** Rejecters of pending waits, called on `close()`. */
  private readonly pending = new Set<(error: Error) => void>();
  private closed = false;

  constructor() {
    // Tests may register many waits at once; no leak warning for them.
    this.emitter.setMaxListeners(0);
  }

  /** Emits `name`; then re-checks every pending `until` predicate. */
  emit<K extends FakeQQEventName>(name: K, payload: FakeQQEvents[K]): void {
    this.emitter.emit(name, payload);
    this.emitter.emit(ANY);
  }

  on<K extends FakeQQEventName>(name: K, listener: Listener<K>): void {
    this.emitter.on(name, listener);
  }

  once<K extends FakeQQEventName>(name: K, listener: Listener<K>): void {
    this.emitter.once(name, listener);
  }

  off<K extends FakeQQEventName>(name: K, listener: Listener<K>): void {
    this.emitter.off(name, listener);
  }

  /**
   * Resolves with the payload of the next `name` event (that satisfies `predicate`, when
   * given) emitted after this call. Start it before triggering the action it waits for.
   * Rejects with a `FakeWaitError` on timeout or when the fake closes.
   */
  waitFor<K extends FakeQQEventName>(
    name: K,
    timeoutMs = DEFAULT_WAIT_MS,
    predicate?: (payload: FakeQQEvents[K]) => boolean,
  ): Promise<FakeQQEvents[K]> {
    return this.wait(`'${name}'`, timeoutMs, (settle) => {
      const listener: Listener<K> = (payload) => {
        if (predicate === undefined || predicate(payload)) settle(payload);
      };
      this.emitter.on(name, listener);
      return () => this.emitter.off(name, listener);
    });
  }

  /**
   * Resolves once `predicate()` is true: checked now and after every event. Use it with the
   * fake's records, e.g. `until(() => fake.identifies.length === 2)`. Rejects like `waitFor`.
   */
  until(predicate: () => boolean, timeoutMs = DEFAULT_WAIT_MS, what = 'condition'): Promise<void> {
    if (predicate()) return Promise.resolve();
    return this.wait(what, timeoutMs, (settle) => {
      const listener = (): void => {
        if (predicate()) settle(undefined);
      };
      this.emitter.on(ANY, listener);
      return () => this.emitter.off(ANY, listener);
    });
  }

  /** Rejects every pending wait and refuses new ones. */
  close(): void {
    this.closed = true;
    const error = new FakeWaitError('fake QQ server closed', 'FAKE_QQ_CLOSED');
    for (const reject of [...this.pending]) reject(error);
    this.emitter.removeAllListeners();
  }

  private wait<T>(
    what: string,
    timeoutMs: number,
    subscribe: (settle: (value: T) => void) => () => void,
  ): Promise<T> {
    if (this.closed) {
      return Promise.reject(new FakeWaitError('fake QQ server closed', 'FAKE_QQ_CLOSED'));
    }
    const promise = new Promise<T>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        unsubscribe();
        this.pending.delete(fail);
      };
      const fail = (error: Error): void => {
        finish();
        reject(error);
      };
      const timer = setTimeout(() => {
        fail(
          new FakeWaitError(
            `timed out after ${timeoutMs} ms waiting for ${what}`,
            'FAKE_QQ_WAIT_TIMEOUT',
          ),
        );
      }, timeoutMs);
      const unsubscribe = subscribe((value) => {
        finish();
        resolve(value);
      });
      this.pending.add(fail);
    });
    // A wait a test never reached (it failed earlier, then closed the fake) must not
    // surface as an unhandled rejection; awaiting it still throws.
    promise.catch(() => undefined);
    return promise;
  }
}

/** Internal event emitted after every public one, to re-check `until` predicates. */
const ANY = Symbol('any');
