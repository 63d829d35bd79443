/** Public entry of the fake Discord gateway + REST server: import from here. */
export {
  FakeDiscordServer,
  type MessageInput,
  type SendFault,
  type SentMessage,
} from './server.js';
export { DEFAULTS, type FakeDiscordOptions, type FakeDiscordSettings } from './options.js';
export type { Violation, ViolationKind } from './gateway.js';
