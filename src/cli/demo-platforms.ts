/**
 * The platforms `demo` can show, each with how its bundled fake starts: apart from the demo
 * itself so that the command tree (program.ts) can list the choices without loading the demo.
 */

/** One platform's fake, started for one demo. */
export interface DemoFake {
  /** Where the fake listens, for the user to see. */
  url: string;
  /** The instance's keys under `platforms.<name>` (indented by the caller). */
  configLines: string[];
  /** Environment the gateway needs (secrets go through `${VAR}`, never the config file). */
  env: Record<string, string>;
  /** What proves the platform accepted the bot, for the ✓ line. */
  connectedNote: string;
  /** A user sends `text`; resolves with the bot's reply text. Rejects after `timeoutMs`. */
  roundTrip(text: string, timeoutMs: number): Promise<string>;
  close(): Promise<void>;
}

/** A platform the demo can show: the instance name and how to start its fake. */
export interface DemoPlatform {
  /** The instance name (= its type) in the demo config and in log lines. */
  name: string;
  /** How the fake is named to the user. */
  label: string;
  /** Loads the fake lazily: every other command (`run` above all) would pay for the import. */
  start(): Promise<DemoFake>;
}

/**
 * Every platform the demo knows, in the order `all` starts them. A new platform is one entry:
 * its fake comes from `src/fakes/<p>/`.
 */
export const DEMO_PLATFORMS: readonly DemoPlatform[] = [
  {
    name: 'qqbot',
    label: 'fake QQ server',
    async start() {
      const { FakeQQServer } = await import('../fakes/qq/server.js');
      const secret = 'demo-secret-0123456789';
      const fake = await FakeQQServer.start({ clientSecret: secret });
      return {
        url: fake.apiBase,
        configLines: [
          // The fake's own app id: unique per demo, so demos side by side hold no one credential.
          `app_id: "${fake.settings.appId}"`,
          'client_secret: ${DEMO_QQ_SECRET}',
          `token_url: ${fake.tokenUrl}`,
          `api_base: ${fake.apiBase}`,
        ],
        env: { DEMO_QQ_SECRET: secret },
        connectedNote: 'the fake server sent READY',
        async roundTrip(text, timeoutMs) {
          const reply = fake.waitFor('message-sent', timeoutMs);
          fake.dispatchC2CMessage({ content: text });
          const body = (await reply).body as { content?: unknown } | undefined;
          return String(body?.content);
        },
        close: () => fake.close(),
      };
    },
  },
  {
    name: 'telegram',
    label: 'fake Telegram Bot API',
    async start() {
      const { FakeTelegramServer } = await import('../fakes/telegram/server.js');
      // The fake's own bot id: unique per demo, so demos side by side hold no one credential.
      const fake = await FakeTelegramServer.start({ username: 'hermes_demo_bot' });
      const token = fake.token;
      return {
        url: fake.apiBase,
        configLines: ['token: ${DEMO_TELEGRAM_TOKEN}', `api_base: ${fake.apiBase}`],
        env: { DEMO_TELEGRAM_TOKEN: token },
        connectedNote: 'getMe accepted the token and the first getUpdates answered',
        async roundTrip(text, timeoutMs) {
          const reply = fake.waitFor<{ text: string }>('sent', timeoutMs);
          fake.message(text);
          return (await reply).text;
        },
        close: () => fake.close(),
      };
    },
  },
  {
    name: 'discord',
    label: 'fake Discord gateway + REST',
    async start() {
      const { FakeDiscordServer } = await import('../fakes/discord/index.js');
      const fake = await FakeDiscordServer.start({ heartbeatIntervalMs: 5_000 });
      return {
        url: fake.apiBase,
        configLines: ['token: ${DEMO_DISCORD_TOKEN}', `api_base: ${fake.apiBase}`],
        env: { DEMO_DISCORD_TOKEN: fake.settings.token },
        connectedNote: 'the fake gateway sent READY',
        async roundTrip(text, timeoutMs) {
          const before = fake.sent.length;
          // A DM: always answered, no mention needed.
          fake.dispatchMessage({ content: text, guildId: null, channelId: '320000000000000001' });
          await fake.until(() => fake.sent.length > before, 'the reply', timeoutMs);
          return String(fake.sent[before]!.body.content);
        },
        close: () => fake.close(),
      };
    },
  },
];

export const DEMO_CHOICES = [...DEMO_PLATFORMS.map((p) => p.name), 'all'];
