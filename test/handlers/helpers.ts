/**
 * Small real collaborators for the message-flow tests: inbound events, an adapter that
 * implements the contract and records what it is asked to send, and a handler whose calls the
 * test releases one by one (so interleavings are decided by the test, not by timing).
 */
import assert from 'node:assert/strict';
import { GatewayError } from '../../src/errors.js';
import type {
  Adapter,
  ChatType,
  InboundEvent,
  OutboundMessage,
  SendResult,
} from '../../src/adapters/contract.js';
import type { Handler, Reply } from '../../src/handlers/handler.js';
import { within } from '../support/deadline.js';

let counter = 0;

export function makeEvent(
  overrides: Partial<Omit<InboundEvent, 'chat'>> & { chat?: string; chatType?: ChatType } = {},
): InboundEvent {
  counter += 1;
  const platform = overrides.platform ?? 'test';
  const { chat, chatType, ...rest } = overrides;
  return {
    id: `${platform}:m${counter}`,
    platform,
    type: platform,
    chat: { type: chatType ?? 'c2c', id: chat ?? 'alice' },
    sender: { id: chat ?? 'alice', name: 'Alice' },
    text: `message ${counter}`,
    attachments: [],
    timestamp: new Date().toISOString(),
    reply: { msg_id: `m${counter}` },
    ...rest,
  };
}

export type SendBehaviour = (message: OutboundMessage, signal?: AbortSignal) => Promise<SendResult>;

/** An adapter that records sends; `behaviour` decides each send's outcome (default: ok). */
export class RecordingAdapter implements Adapter {
  readonly sent: OutboundMessage[] = [];
  behaviour: SendBehaviour | null = null;

  constructor(readonly name = 'test') {}

  run(_ctx: unknown, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) =>
      signal.addEventListener('abort', () => resolve(), { once: true }),
    );
  }

  async send(message: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
    if (this.behaviour) {
      const result = await this.behaviour(message, signal);
      this.sent.push(message);
      return result;
    }
    this.sent.push(message);
    return { ids: [`${this.name}-${this.sent.length}`] };
  }

  /** Texts sent to one chat, in order. */
  textsTo(chat: string): string[] {
    return this.sent.filter((m) => m.chat.id === chat).map((m) => m.text);
  }
}

interface Pending {
  event: InboundEvent;
  release: (replies?: Reply[]) => void;
  fail: (err: Error) => void;
}

/**
 * A handler whose every call waits until the test releases it. `started` lists events in the
 * order handle() was called; `running` is how many calls are in progress.
 */
export class GatedHandler implements Handler {
  readonly type = 'gated';
  readonly started: InboundEvent[] = [];
  running = 0;
  maxRunning = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly waiters: Array<() => void> = [];

  handle(event: InboundEvent, signal: AbortSignal): Promise<Reply[]> {
    this.started.push(event);
    this.running += 1;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    return new Promise<Reply[]>((resolve, reject) => {
      const done = (): void => {
        this.running -= 1;
        this.pending.delete(event.id);
      };
      const onAbort = (): void => {
        done();
        reject(new Error('aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.set(event.id, {
        event,
        release: (replies) => {
          signal.removeEventListener('abort', onAbort);
          done();
          resolve(replies ?? [{ text: `re: ${event.text}` }]);
        },
        fail: (err) => {
          signal.removeEventListener('abort', onAbort);
          done();
          reject(err);
        },
      });
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  isRunning(id: string): boolean {
    return this.pending.has(id);
  }

  /** Resolves once handle() has been called for `id`; rejects after `timeoutMs`. */
  async waitStarted(id: string, timeoutMs = 5_000): Promise<void> {
    const started = (async () => {
      while (!this.started.some((e) => e.id === id)) {
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    })();
    await within(started, timeoutMs, `the handler to start ${id}`);
  }

  release(id: string, replies?: Reply[]): void {
    const pending = this.pending.get(id);
    if (!pending) throw new Error(`${id} is not running`);
    pending.release(replies);
  }

  fail(id: string, err: Error): void {
    const pending = this.pending.get(id);
    if (!pending) throw new Error(`${id} is not running`);
    pending.fail(err);
  }
}

/** Awaits `promise`, asserting it rejects with a GatewayError of `code`; returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<GatewayError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof GatewayError, `expected a GatewayError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected a rejection with ${code}`);
}
