/**
 * The Telegram ceiling: a bare loop of `fetch` + `JSON.parse` that does the least a correct
 * polling client must do — one getUpdates at a time, the offset one past the last update —
 * and otherwise only counts messages. Variant `echo` also answers each message with a bare
 * sendMessage. Nothing real can be faster through the same server and parser.
 */
import { Counter, fail, runChild, type ClientConfig } from '../lib/ipc.js';

interface Update {
  update_id: number;
  message?: { text?: string; chat: { id: number } };
}

async function start(config: ClientConfig): Promise<void> {
  const base = `${config.apiBase}/bot${config.token ?? ''}`;
  const counter = new Counter(config.expected);
  const call = async (method: string, params: Record<string, unknown>): Promise<unknown> => {
    const res = await fetch(`${base}/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(params),
    });
    const body = JSON.parse(await res.text()) as { ok: boolean; result?: unknown };
    if (!body.ok) throw new Error(`${method}: ${JSON.stringify(body)}`);
    return body.result;
  };
  await call('getMe', {});
  let offset: number | undefined;
  let first = true;
  for (;;) {
    const updates = (await call('getUpdates', {
      ...(offset === undefined ? {} : { offset }),
      limit: 100,
      timeout: first ? 0 : 30,
    })) as Update[];
    if (first) counter.ready();
    first = false;
    for (const u of updates) {
      offset = u.update_id + 1;
      if (u.message === undefined) continue;
      if (config.variant === 'echo' && u.message.text !== undefined) {
        call('sendMessage', { chat_id: u.message.chat.id, text: u.message.text }).catch(
          (err: unknown) => fail(String(err)),
        );
      }
      counter.hit();
    }
  }
}

runChild(start);
