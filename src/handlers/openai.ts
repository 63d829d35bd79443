import { z } from 'zod';
import { GatewayError } from '../errors.js';
import type { OpenAiHandlerConfig } from './config.js';
import { conversationKey, type Handler, type HandlerDeps, type Reply } from './handler.js';
import { postWithRetry, safeUrl } from './http.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** The part of a chat completion we read; the rest of the answer is ignored. */
const completion = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.string().nullable().optional() }),
      }),
    )
    .min(1),
});

/**
 * Conversation histories, least recently used first. A Map keeps insertion order, so moving a
 * key to the end on use and dropping from the front bounds it to `maxConversations`.
 */
class Histories {
  private readonly map = new Map<string, ChatMessage[]>();

  constructor(
    private readonly maxTurns: number,
    private readonly maxConversations: number,
  ) {}

  get(key: string): ChatMessage[] {
    return this.map.get(key) ?? [];
  }

  /** Appends one user message and its answer, keeping the last `maxTurns` turns. */
  record(key: string, user: string, assistant: string): void {
    if (this.maxTurns === 0) return;
    const turns = [...this.get(key), { role: 'user', content: user } as const];
    turns.push({ role: 'assistant', content: assistant });
    this.map.delete(key);
    this.map.set(key, turns.slice(-2 * this.maxTurns));
    while (this.map.size > this.maxConversations) {
      const oldest = this.map.keys().next().value;
      if (oldest === undefined) break;
      this.map.delete(oldest);
    }
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
  }
}

export interface OpenAiHandler extends Handler {
  /** The history the next request of this conversation will carry (for tests and debugging). */
  history(key: string): readonly ChatMessage[];
  readonly conversations: number;
}

/**
 * Calls an OpenAI-compatible `POST {base_url}/chat/completions` (OpenAI, llama.cpp's server,
 * vLLM, Ollama's /v1) with the conversation's last `max_history` turns and delivers
 * `choices[0].message.content`. A turn is recorded only once it was answered, so a failed
 * call leaves the history as it was.
 */
export function createOpenAiHandler(config: OpenAiHandlerConfig, deps: HandlerDeps): OpenAiHandler {
  const url = new URL(`${config.base_url.replace(/\/+$/, '')}/chat/completions`);
  const where = safeUrl(url);
  const log = deps.log.child({ handler: 'openai' });
  const histories = new Histories(config.max_history, config.max_conversations);
  return {
    type: 'openai',
    history: (key) => histories.get(key),
    get conversations() {
      return histories.size;
    },
    async handle(event, signal): Promise<Reply[]> {
      if (event.text.trim() === '') return [];
      const key = conversationKey(event);
      const messages: ChatMessage[] = [];
      if (config.system_prompt) messages.push({ role: 'system', content: config.system_prompt });
      messages.push(...histories.get(key), { role: 'user', content: event.text });
      const request: Record<string, unknown> = { model: config.model, messages, stream: false };
      if (config.max_tokens !== undefined) request.max_tokens = config.max_tokens;
      if (config.temperature !== undefined) request.temperature = config.temperature;
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'hermes-gateway',
      };
      if (config.api_key) headers.authorization = `Bearer ${config.api_key.reveal()}`;
      const response = await postWithRetry(
        {
          url,
          body: Buffer.from(JSON.stringify(request), 'utf8'),
          headers,
          timeoutMs: config.timeout_ms,
          maxResponseBytes: config.max_response_bytes,
          signal,
          maxAttempts: config.max_attempts,
          retryBackoffMs: config.retry_backoff_ms,
          retryBackoffMaxMs: config.retry_backoff_max_ms,
        },
        (attempt, reason) =>
          log.info({ event_id: event.id, attempt, url: where }, `chat completion retry: ${reason}`),
      );
      let parsed: unknown;
      try {
        parsed = JSON.parse(response.body.toString('utf8'));
      } catch {
        throw malformed(where, 'the body is not JSON');
      }
      const answer = completion.safeParse(parsed);
      if (!answer.success) throw malformed(where, 'expected choices[0].message.content');
      const content = answer.data.choices[0]?.message.content ?? '';
      if (content.trim() === '') return [];
      histories.record(key, event.text, content);
      return [{ text: content }];
    },
    close() {
      histories.clear();
      return Promise.resolve();
    },
  };
}

function malformed(where: string, why: string): GatewayError {
  return new GatewayError(
    'GW_ERR_HANDLER_MALFORMED_RESPONSE',
    `malformed chat completion from ${where}: ${why}`,
    { details: { url: where } },
  );
}
