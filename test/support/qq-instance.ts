import type { FakeQQServer } from '../../src/fakes/qq/server.js';

/**
 * The part of a `qqbot` instance's config that points it at `fake`: its app id, the token
 * and API URLs, and the client secret as a reference to the environment variable `secretEnv`
 * (the test gives the gateway the fake's secret there, so it never sits in a config file).
 */
export function qqbotInstanceFor(fake: FakeQQServer, secretEnv: string): Record<string, string> {
  return {
    app_id: fake.settings.appId,
    client_secret: `\${${secretEnv}}`,
    token_url: fake.tokenUrl,
    api_base: fake.apiBase,
  };
}
