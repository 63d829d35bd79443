/**
 * Socket activation of the webhook listener under a REAL user manager (scripts/systemd-harness):
 * `install --socket LISTEN` writes and enables `<unit>.socket`; systemd binds the address and
 * passes it to the gateway (LISTEN_FDS), which adopts it instead of binding; the platform's
 * signed callback is acknowledged and answered through it; `uninstall` removes both units.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { FakeQQServer } from '../../src/fakes/qq/server.js';
import { socketUnitName } from '../../src/systemd/install.js';
import { freePort } from '../support/ports.js';
import {
  gatewayCli,
  readStateDoc,
  removeGatewayUnit,
  scenarioSkipReason,
  writeDropIn,
} from '../support/service-scenario.js';
import { SystemdHarness } from '../support/systemd-harness.js';
import { qqbotInstanceFor } from '../support/qq-instance.js';

const skip = await scenarioSkipReason();
const WAIT_MS = 20_000;
const SECRET = `hgw-socket-secret-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

await test(
  'install --socket: systemd passes the webhook listener and the gateway answers through it',
  { skip, timeout: 120_000 },
  async (t) => {
    const harness = await SystemdHarness.start();
    const fake = await FakeQQServer.start({ clientSecret: SECRET });
    const unit = harness.uniqueUnitName('hgw-socket');
    const socket = socketUnitName(unit);
    t.after(async () => {
      await harness.systemctl(['stop', socket]);
      await harness.systemctl(['disable', socket]);
      await removeGatewayUnit(harness, unit);
      await fake.close();
      await harness.stop();
    });
    const port = await freePort();
    const listen = `127.0.0.1:${port}`;
    const statePath = join(harness.stateDir, 'socket-state.json');
    const config = join(harness.stateDir, 'socket.yaml');
    await writeFile(
      config,
      stringify({
        state_file: statePath,
        log_level: 'debug',
        shutdown_timeout_ms: 2_000,
        handler: { type: 'echo' },
        platforms: {
          qqbot: {
            ...qqbotInstanceFor(fake, 'HGW_SOCKET_SECRET'),
            jitter: false,
            transport: 'webhook',
            webhook: { listen },
          },
        },
      }),
      { mode: 0o600 },
    );
    await writeDropIn(harness, unit, [`Environment=HGW_SOCKET_SECRET=${SECRET}`]);
    const install = await gatewayCli(harness, [
      'install',
      '--config',
      config,
      '--unit',
      unit,
      '--socket',
      listen,
      '--now',
    ]);
    assert.equal(install.code, 0, install.stderr);
    assert.ok(existsSync(join(harness.unitDir, socket)), 'the socket unit is written');
    const sock = await harness.show(socket, ['ActiveState', 'Listen']);
    assert.equal(sock.ActiveState, 'active');
    assert.match(sock.Listen, new RegExp(`127\\.0\\.0\\.1:${port} \\(Stream\\)`));
    await harness.waitFor(
      async () => {
        const s = await harness.show(unit, ['StatusText']);
        return s.StatusText === 'running: qqbot connected' && s;
      },
      WAIT_MS,
      { what: 'the webhook instance connected' },
    );
    // The gateway took systemd's socket instead of binding its own.
    const journal = (await harness.journal(unit)).join('\n');
    assert.match(journal, /from systemd socket activation/);
    assert.match(journal, /route registered .*activated=true/);

    fake.webhook.target = `http://${listen}/qqbot/qqbot`;
    fake.webhook.retry = { attempts: 20, delayMs: 200 };
    const record = await fake.webhook.dispatch('C2C_MESSAGE_CREATE', {
      id: 'ROBOT1.0_socket-1',
      author: { id: 'u1', user_openid: 'OPENID-SOCKET' },
      content: 'through the socket unit',
      timestamp: new Date().toISOString(),
      message_scene: { source: 'default' },
    });
    assert.equal(record.acked, true);
    await fake.until(
      () =>
        fake.sentMessages.some(
          (m) => m.accepted && (m.body as { msg_id?: unknown }).msg_id === 'ROBOT1.0_socket-1',
        ),
      WAIT_MS,
      'the echo reply',
    );
    assert.equal(readStateDoc(statePath)?.platforms.qqbot?.state, 'connected');

    const removed = await gatewayCli(harness, ['uninstall', '--unit', unit]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.ok(!existsSync(join(harness.unitDir, socket)), 'uninstall removes the socket unit');
    assert.equal((await harness.show(socket, ['ActiveState'])).ActiveState, 'inactive');
    fake.assertNoViolations();
  },
);
