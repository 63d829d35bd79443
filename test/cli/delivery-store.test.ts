/**
 * The delivery store end to end (GitHub issue 15, docs/delivery.md): the built CLI shows the
 * store's health and the resume point's age per instance in the state file, and a store that
 * cannot be opened or written ends the gateway with exit 70 (like the state file), with
 * nothing sent that was not recorded first.
 */
import assert from 'node:assert/strict';
import { mkdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type BetterSqlite3 from 'better-sqlite3';
import { deliveryStorePath } from '../../src/delivery/store.js';
import { FakeTelegramServer, type FakeChat } from '../../src/fakes/telegram/server.js';
import {
  GatewayProcess,
  killAllChildren,
  makeTempDir,
  PRODUCT_CLI,
  readState,
  removeTempDir,
  sandboxEnv,
  waitFor,
  waitForState,
  writeConfig,
} from '../support/spawn-gateway.js';

after(killAllChildren);

/** A bot id of its own: credential locks are machine-wide. */
const TOKEN = '7990003737:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_store';
const CHAT: FakeChat = { id: 4242, type: 'private', first_name: 'Ada' };

await test('a delivery store that cannot be opened: exit 70, GW_ERR_DELIVERY_STORE_OPEN persisted', async () => {
  const dir = await makeTempDir('hgw-store-open-');
  try {
    const statePath = join(dir, 'state', 'gateway_state.json');
    // A directory where the database file should be.
    await mkdir(deliveryStorePath(statePath), { recursive: true });
    const config = await writeConfig(dir, { state_file: statePath, platforms: { scripted: {} } });
    const gateway = new GatewayProcess(['run', '--config', config], { env: sandboxEnv(dir) });
    const exit = await gateway.waitForExit(20_000);
    assert.equal(exit.code, 70, gateway.stdout);
    assert.ok(gateway.codes().includes('GW_ERR_DELIVERY_STORE_OPEN'), gateway.stdout);
    const state = readState(statePath);
    assert.equal(state?.gateway.state, 'fatal');
    assert.equal(state?.gateway.exit_code, 70);
    assert.match(state?.gateway.reason ?? '', /^GW_ERR_DELIVERY_STORE_OPEN:/);
  } finally {
    await removeTempDir(dir);
  }
});

await test('state file: store health and resume point age per instance; a store that cannot be written → exit 70, nothing sent unrecorded', async () => {
  const dir = await makeTempDir('hgw-store-write-');
  const fake = await FakeTelegramServer.start({ token: TOKEN });
  let other: BetterSqlite3.Database | null = null;
  try {
    const statePath = join(dir, 'gateway_state.json');
    const config = await writeConfig(dir, {
      state_file: statePath,
      heartbeat_interval_ms: 200,
      platforms: {
        telegram: {
          enabled: true,
          token: '${HGW_TEST_TG_TOKEN}',
          api_base: fake.apiBase,
          polling: { timeout_s: 1, handled_wait_ms: 100 },
          send: { private_interval_ms: 0, group_interval_ms: 0, global_interval_ms: 0 },
          jitter: false,
        },
      },
    });
    const gateway = new GatewayProcess(['run', '--config', config], {
      cli: PRODUCT_CLI,
      env: sandboxEnv(dir, { HGW_TEST_TG_TOKEN: TOKEN }),
    });
    await waitForState(
      statePath,
      (d) => d.platforms.telegram?.state === 'connected',
      'connected',
      20_000,
    );
    const first = fake.message('one', { chat: CHAT });
    await waitFor(() => fake.sent.length === 1, 'the first answer', 10_000);
    const healthy = await waitForState(
      statePath,
      (d) => d.platforms.telegram?.delivery?.handled_position === first.updateId,
      'the handled position',
      10_000,
    );
    const delivery = healthy.platforms.telegram!.delivery!;
    assert.equal(delivery.store, 'ok');
    assert.equal(typeof delivery.resume_point_age_ms, 'number');
    assert.ok(delivery.resume_point_age_ms! >= 0 && delivery.resume_point_age_ms! < 60_000);
    const path = deliveryStorePath(statePath);
    assert.equal((await stat(path)).mode & 0o777, 0o600);

    // Another process takes the database's write lock: the gateway's next commit fails.
    const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
    other = new Database(path);
    other.exec('BEGIN EXCLUSIVE');
    fake.message('two', { chat: CHAT });
    const exit = await gateway.waitForExit(20_000);
    assert.equal(exit.code, 70, gateway.stdout);
    assert.ok(gateway.codes().includes('GW_ERR_DELIVERY_STORE_WRITE'), gateway.stdout);
    assert.equal(fake.sent.length, 1, 'the reply whose record failed was not sent');
    const state = readState(statePath);
    assert.equal(state?.gateway.state, 'fatal');
    assert.equal(state?.gateway.exit_code, 70);
    assert.match(state?.gateway.reason ?? '', /GW_ERR_DELIVERY_STORE_WRITE/);
    assert.equal(state?.platforms.telegram?.delivery?.store, 'failed');
  } finally {
    other?.exec('ROLLBACK');
    other?.close();
    killAllChildren();
    await fake.close();
    await removeTempDir(dir);
  }
});
