/**
 * grammY (the most used Telegram bot framework for Node), unpatched, pointed at the fake with
 * its own `client.apiRoot` option, polling with its built-in `bot.start()` (limit 100). It
 * counts messages; variant `echo` answers each with `ctx.reply(text)`.
 */
import { Counter, fail, runChild, type ClientConfig } from '../lib/ipc.js';
import { loadPeer } from '../lib/peers.js';

/** The part of grammY's API the bench uses. */
interface GrammyContext {
  message?: { text?: string };
  reply(text: string): Promise<unknown>;
}
interface GrammyBot {
  on(filter: string, handler: (ctx: GrammyContext) => unknown): void;
  catch(handler: (err: unknown) => void): void;
  start(options: { limit?: number; onStart?: () => void }): Promise<void>;
}
interface Grammy {
  Bot: new (token: string, config: { client: { apiRoot: string } }) => GrammyBot;
}

async function start(config: ClientConfig): Promise<void> {
  const { Bot } = loadPeer('grammy') as Grammy;
  const counter = new Counter(config.expected);
  const bot = new Bot(config.token ?? '', { client: { apiRoot: config.apiBase } });
  bot.on('message', async (ctx) => {
    counter.hit();
    if (config.variant === 'echo' && ctx.message?.text !== undefined) {
      await ctx.reply(ctx.message.text);
    }
  });
  bot.catch((err) => fail(String(err)));
  // onStart: getMe and deleteWebhook answered; the orchestrator waits for the first held poll.
  await bot.start({ limit: 100, onStart: () => counter.ready() });
}

runChild(start);
