/** Public entry of the fake QQ Bot server: import from here. */
export { FakeQQServer, type Dispatched } from './server.js';
export { FakeWaitError, DEFAULT_WAIT_MS } from './events.js';
export {
  DEFAULTS,
  type FakeQQServerOptions,
  type FakeQQSettings,
  type SessionStartLimit,
} from './options.js';
export type { SendFault } from './messages.js';
export type { GatewayFault, TokenFault } from './rest.js';
export type * from './records.js';
export * as payloads from './payloads.js';
export type { CallbackRecord, CallbackAttempt, CallbackRetry, RawCallback } from './webhook.js';
export { FakeWebhook } from './webhook.js';
