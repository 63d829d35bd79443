/**
 * One table of bad configs, shared by the in-process loadConfig tests and the CLI tests
 * (`check` and `run` must both exit 78 for each, naming the same code and key).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeConfig } from './spawn-gateway.js';

/** A value that must never appear in a log line, an error or the state file. */
export const SECRET_VALUE = 'hgw-test-s3cret-9f8e7d';

export interface BadConfig {
  name: string;
  /** The config file's content (an object dumped as YAML, or raw text); null: no file. */
  config: unknown;
  /** Extra environment for the gateway. */
  env?: Record<string, string>;
  code: string;
  /** The key `details.key` must name; undefined where the error has no key (parse, not found). */
  key?: string;
  /** Files to create beside the config before loading, name -> content. */
  files?: Record<string, string>;
}

export const BAD_CONFIGS: BadConfig[] = [
  {
    name: 'unknown top-level key',
    config: { bogus_key: 1, platforms: { scripted: {} } },
    code: 'GW_ERR_CONFIG_INVALID',
    key: 'bogus_key',
  },
  {
    name: 'unknown nested key',
    config: { platforms: { scripted: { bogus_nested: true } } },
    code: 'GW_ERR_CONFIG_INVALID',
    key: 'platforms.scripted.bogus_nested',
  },
  {
    name: 'unknown platform',
    config: { platforms: { no_such_platform: { enabled: true } } },
    code: 'GW_ERR_CONFIG_INVALID',
    key: 'platforms.no_such_platform',
  },
  {
    name: 'wrong type at the top level',
    config: { shutdown_timeout_ms: 'soon', platforms: { scripted: {} } },
    code: 'GW_ERR_CONFIG_INVALID',
    key: 'shutdown_timeout_ms',
  },
  {
    name: 'wrong type in a platform',
    config: { platforms: { scripted: { after_ms: 'later' } } },
    code: 'GW_ERR_CONFIG_INVALID',
    key: 'platforms.scripted.after_ms',
  },
  {
    name: 'value out of range',
    config: { heartbeat_interval_ms: -5, platforms: { scripted: {} } },
    code: 'GW_ERR_CONFIG_INVALID',
    key: 'heartbeat_interval_ms',
  },
  {
    name: 'missing ${VAR}',
    config: { state_file: '${HGW_TEST_UNSET_DIR}/state.json', platforms: { scripted: {} } },
    code: 'GW_ERR_CONFIG_ENV_MISSING',
    key: 'state_file',
  },
  {
    name: 'missing ${VAR} for a secret',
    config: { platforms: { secretive: { token: '${HGW_TEST_UNSET_TOKEN}' } } },
    code: 'GW_ERR_CONFIG_ENV_MISSING',
    key: 'platforms.secretive.token',
  },
  {
    name: 'unreadable secret file',
    config: { platforms: { secretive: { token_file: 'no-such-token-file' } } },
    code: 'GW_ERR_CONFIG_SECRET_UNREADABLE',
    key: 'platforms.secretive.token_file',
  },
  {
    name: 'empty secret file',
    config: { platforms: { secretive: { token_file: 'empty-token' } } },
    files: { 'empty-token': '\n' },
    code: 'GW_ERR_CONFIG_SECRET_UNREADABLE',
    key: 'platforms.secretive.token_file',
  },
  {
    name: 'credential without $CREDENTIALS_DIRECTORY',
    config: { platforms: { secretive: { token_credential: 'bot-token' } } },
    code: 'GW_ERR_CONFIG_SECRET_UNREADABLE',
    key: 'platforms.secretive.token_credential',
  },
  {
    name: 'inline secret',
    config: { platforms: { secretive: { token: SECRET_VALUE } } },
    code: 'GW_ERR_CONFIG_SECRET_INLINE',
    key: 'platforms.secretive.token',
  },
  {
    name: 'missing secret',
    config: { platforms: { secretive: {} } },
    code: 'GW_ERR_CONFIG_INVALID',
    key: 'platforms.secretive.token',
  },
  {
    name: 'YAML syntax error',
    config: 'platforms:\n  scripted: {enabled: true\n  bad: [\n',
    code: 'GW_ERR_CONFIG_PARSE',
  },
  {
    name: 'missing config file',
    config: null,
    code: 'GW_ERR_CONFIG_NOT_FOUND',
  },
  {
    name: 'no platform enabled',
    config: { platforms: { scripted: { enabled: false } } },
    code: 'GW_ERR_NO_PLATFORMS',
    key: 'platforms',
  },
  {
    name: 'no platforms at all',
    config: { log_level: 'info' },
    code: 'GW_ERR_NO_PLATFORMS',
    key: 'platforms',
  },
  // Instances (issue 10): names, types, and one credential per instance.
  {
    name: 'instance name with upper case',
    config: { platforms: { QQ_Test: { type: 'scripted' } } },
    code: 'GW_ERR_CONFIG_INVALID',
    key: 'platforms.QQ_Test',
  },
  {
    name: 'unknown type of an instance',
    config: { platforms: { 'qq-test': { type: 'icq' } } },
    code: 'GW_ERR_CONFIG_INVALID',
    key: 'platforms.qq-test.type',
  },
  {
    name: 'unknown key in a typed instance',
    config: { platforms: { 'bot-2': { type: 'scripted', bogus_nested: true } } },
    code: 'GW_ERR_CONFIG_INVALID',
    key: 'platforms.bot-2.bogus_nested',
  },
  {
    name: 'one QQ app_id in two instances',
    config: {
      platforms: {
        qqbot: { app_id: '102099999', client_secret: '${HGW_TEST_QQ_SECRET}' },
        'qq-test': {
          type: 'qqbot',
          app_id: '102099999',
          client_secret: '${HGW_TEST_QQ_SECRET}',
        },
      },
    },
    env: { HGW_TEST_QQ_SECRET: SECRET_VALUE },
    code: 'GW_ERR_CREDENTIAL_IN_USE',
    key: 'platforms.qq-test',
  },
];

/** Writes a case's files into `dir`; returns the config path and the environment to use. */
export async function prepareCase(
  bad: BadConfig,
  dir: string,
): Promise<{ file: string; env: Record<string, string> }> {
  for (const [name, content] of Object.entries(bad.files ?? {})) {
    await writeFile(join(dir, name), content);
  }
  const file =
    bad.config === null ? join(dir, 'missing-config.yaml') : await writeConfig(dir, bad.config);
  return { file, env: { ...bad.env } };
}
