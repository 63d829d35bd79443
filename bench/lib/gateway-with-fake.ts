/**
 * The set-up every gateway-CLI section shares: a fake QQ server, a temporary directory with a
 * config pointing the qqbot platform at it, and the gateway CLI started on that config.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FakeQQServer } from '../../src/fakes/qq/index.js';
import { startFake } from './fake-host.js';
import { writeGatewayConfig, type BenchGatewayConfig } from './gateway-config.js';
import { GatewayChild } from './gateway-proc.js';

/** Config keys a section may set; the fake's own URLs and ids are filled in. */
export type ConfigPatch = Omit<BenchGatewayConfig, 'stateFile' | 'tokenUrl' | 'apiBase' | 'appId'>;

export interface GatewayWithFake {
  fake: FakeQQServer;
  gateway: GatewayChild;
  stateFile: string;
  /** Stops the gateway, closes the fake and removes the directory. */
  close: () => Promise<void>;
}

export async function startGatewayWithFake(options: {
  /** Names the temporary directory (`hgw-bench-<tag>-`). */
  tag: string;
  fake?: Parameters<typeof startFake>[0];
  config?: ConfigPatch;
  /** Extra environment of the gateway process. */
  env?: Record<string, string>;
}): Promise<GatewayWithFake> {
  const fake = await startFake(options.fake);
  const dir = await mkdtemp(join(tmpdir(), `hgw-bench-${options.tag}-`));
  const stateFile = join(dir, 'gateway_state.json');
  const close = async (): Promise<void> => {
    await gateway?.stop();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  };
  let gateway: GatewayChild | undefined;
  try {
    const config = await writeGatewayConfig(dir, {
      stateFile,
      tokenUrl: fake.tokenUrl,
      apiBase: fake.apiBase,
      appId: fake.settings.appId,
      ...options.config,
    });
    gateway = new GatewayChild({
      config,
      secret: fake.settings.clientSecret,
      ...(options.env !== undefined && { env: options.env }),
    });
  } catch (err) {
    await close();
    throw err;
  }
  return { fake, gateway, stateFile, close };
}
