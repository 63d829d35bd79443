/**
 * The Discord entry of `hermes-gateway demo --platform discord`: the bundled fake Discord
 * (gateway + REST) on loopback, a bot token the fake accepts, and one DM round trip.
 */
const STEP_TIMEOUT_MS = 8_000;

/** One platform's part of the demo: its fake, its config block, one message round trip. */
export interface DemoPlatform {
  /** The instance name and type (`discord`). */
  name: string;
  /** How the demo names the fake (`Discord`). */
  label: string;
  start(): Promise<DemoSession>;
}

export interface DemoSession {
  /** Where the fake listens (printed). */
  where: string;
  /** The lines under `platforms:` (indented two spaces). */
  config: string[];
  /** Environment the gateway child needs (the secret the config names). */
  env: Record<string, string>;
  /** A user says `text`; resolves with the bot's reply text. */
  say(text: string): Promise<string>;
  close(): Promise<void>;
}

export const discordDemo: DemoPlatform = {
  name: 'discord',
  label: 'Discord',
  async start(): Promise<DemoSession> {
    // Loaded here, not at the top: every other command (`run` above all) would pay for it.
    const { FakeDiscordServer } = await import('../fakes/discord/index.js');
    const fake = await FakeDiscordServer.start({ heartbeatIntervalMs: 5_000 });
    return {
      where: fake.apiBase,
      config: ['  discord:', '    token: ${DEMO_DISCORD_TOKEN}', `    api_base: ${fake.apiBase}`],
      env: { DEMO_DISCORD_TOKEN: fake.settings.token },
      async say(text) {
        const before = fake.sent.length;
        // A DM: always answered, no mention needed.
        fake.dispatchMessage({ content: text, guildId: null, channelId: '320000000000000001' });
        await fake.until(() => fake.sent.length > before, 'the reply', STEP_TIMEOUT_MS);
        return String(fake.sent[before]!.body.content);
      },
      close: () => fake.close(),
    };
  },
};
