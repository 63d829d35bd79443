/**
 * An OpenAI-compatible chat completions server (the subset llama.cpp's server, vLLM and
 * Ollama's /v1 share) on a real HTTP server (127.0.0.1, port 0):
 * `POST /v1/chat/completions` and `GET /v1/models`. It checks the bearer key when given one
 * (401 with OpenAI's error shape otherwise), records every request body, and answers with a
 * deterministic completion. Tests queue special answers (`script`) for the failure modes.
 */
import http, { type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ChatRequest {
  model: string;
  messages: Array<{ role: string; content: string }>;
  max_tokens?: number;
  temperature?: number;
  stream?: boolean;
}

export type OpenAiBehaviour =
  | { kind: 'status'; status: number; body?: unknown }
  | { kind: 'raw'; status: number; text: string }
  | { kind: 'hang' }
  | { kind: 'reset' }
  /** Answer with this content (null: a completion without text). */
  | { kind: 'content'; content: string | null };

export interface RecordedChat {
  headers: IncomingHttpHeaders;
  body: ChatRequest;
}

export interface FakeOpenAiOptions {
  /** When set, requests must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  models?: string[];
  /** A wrong key gets `Incorrect API key provided: <the Authorization received>` (a careless server). */
  echoAuthorization?: boolean;
}

export class FakeOpenAi {
  readonly requests: RecordedChat[] = [];
  readonly script: OpenAiBehaviour[] = [];
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private port = 0;
  private served = 0;

  constructor(private readonly options: FakeOpenAiOptions = {}) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () =>
        this.route(req.method ?? 'GET', req.url ?? '/', req.headers, Buffer.concat(chunks), res),
      );
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** What goes in `handler.base_url`. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private route(
    method: string,
    url: string,
    headers: IncomingHttpHeaders,
    body: Buffer,
    res: ServerResponse,
  ): void {
    if (
      this.options.apiKey !== undefined &&
      headers.authorization !== `Bearer ${this.options.apiKey}`
    ) {
      json(res, 401, {
        error: {
          message: this.options.echoAuthorization
            ? `Incorrect API key provided: ${headers.authorization ?? ''}`
            : 'Incorrect API key provided',
          type: 'invalid_request_error',
          code: 'invalid_api_key',
        },
      });
      return;
    }
    if (method === 'GET' && url === '/v1/models') {
      json(res, 200, {
        object: 'list',
        data: (this.options.models ?? ['fake-model']).map((id) => ({
          id,
          object: 'model',
          owned_by: 'fake',
        })),
      });
      return;
    }
    if (method !== 'POST' || url !== '/v1/chat/completions') {
      json(res, 404, {
        error: { message: `no route ${method} ${url}`, type: 'invalid_request_error' },
      });
      return;
    }
    let request: ChatRequest;
    try {
      request = JSON.parse(body.toString('utf8')) as ChatRequest;
    } catch {
      json(res, 400, { error: { message: 'body is not JSON', type: 'invalid_request_error' } });
      return;
    }
    this.requests.push({ headers, body: request });
    const behaviour = this.script.shift();
    switch (behaviour?.kind) {
      case undefined:
        this.complete(request, res, defaultContent(request, ++this.served));
        return;
      case 'content':
        this.complete(request, res, behaviour.content);
        return;
      case 'status':
        json(
          res,
          behaviour.status,
          behaviour.body ?? { error: { message: 'scripted', type: 'server_error' } },
        );
        return;
      case 'raw':
        res.writeHead(behaviour.status, { 'content-type': 'application/json' });
        res.end(behaviour.text);
        return;
      case 'hang':
        return;
      case 'reset':
        res.socket?.destroy();
        return;
    }
  }

  private complete(request: ChatRequest, res: ServerResponse, content: string | null): void {
    json(res, 200, {
      id: `chatcmpl-${this.requests.length}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: request.model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: {
        prompt_tokens: request.messages.length,
        completion_tokens: 1,
        total_tokens: request.messages.length + 1,
      },
    });
  }
}

/** "answer N to: <last user message>", so tests can tell answers (and their order) apart. */
function defaultContent(request: ChatRequest, n: number): string {
  const last = [...request.messages].reverse().find((m) => m.role === 'user');
  return `answer ${n} to: ${last?.content ?? ''}`;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

export async function startFakeOpenAi(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  return new FakeOpenAi(options).start();
}
