/**
 * `install --worker NAME` under a real user manager (scripts/systemd-harness) with a real
 * nats-server: hermes-gateway-worker@NAME is Type=notify (active once READY=1, STATUS=
 * follows the broker), answers events under the unit's hardening, and a worker whose
 * credentials the broker refuses exits 78 and stays down (no restart).
 */
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { startNatsServer } from '../support/nats-server.js';
import {
  gatewayCli,
  removeGatewayUnit,
  scenarioSkipReason,
  writeDropIn,
} from '../support/service-scenario.js';
import { SystemdHarness } from '../support/systemd-harness.js';

const skip = await scenarioSkipReason();
const TOKEN = 'worker-unit-token-0123456789';

await test(
  'hermes-gateway-worker@NAME under a real user manager',
  { skip, timeout: 120_000 },
  async (t) => {
    const nats = await startNatsServer({ token: TOKEN });
    t.after(() => nats.dispose());
    const harness = await SystemdHarness.start();
    const units: string[] = [];
    t.after(async () => {
      for (const unit of units) await removeGatewayUnit(harness, unit);
      await rm(join(harness.unitDir, 'hermes-gateway-worker@.service'), { force: true });
      await harness.stop();
    });
    const workers = join(harness.env.XDG_CONFIG_HOME!, 'hermes-gateway', 'workers');
    await mkdir(workers, { recursive: true });
    const tokenFile = join(workers, 'token');
    await writeFile(tokenFile, TOKEN, { mode: 0o600 });
    const config = (token: Record<string, string>): string =>
      stringify({
        log_format: 'json',
        broker: {
          servers: [nats.url],
          stream: 'SD',
          subject_prefix: 'sd',
          partitions: 2,
          ...token,
        },
        handler: { type: 'echo' },
      });
    await writeFile(join(workers, 'good.yaml'), config({ token_file: tokenFile }), { mode: 0o600 });
    await writeFile(join(workers, 'bad.yaml'), config({ token: '${WRONG}' }), { mode: 0o600 });

    await t.test('install --worker good --now: active, READY then STATUS consuming', async () => {
      const unit = 'hermes-gateway-worker@good.service';
      units.push(unit);
      const install = await gatewayCli(harness, ['install', '--worker', 'good', '--now']);
      assert.equal(install.code, 0, install.stderr);
      assert.match(install.stdout, /started hermes-gateway-worker@good\.service/);
      const up = await harness.waitFor(
        async () => {
          const p = await harness.show(unit, ['ActiveState', 'StatusText', 'NRestarts']);
          return p.ActiveState === 'active' && p.StatusText.startsWith('consuming') && p;
        },
        30_000,
        { what: 'worker active and consuming' },
      );
      assert.equal(up.NRestarts, '0');
    });

    await t.test('a refused token: exit 78, failed, not restarted', async () => {
      const unit = 'hermes-gateway-worker@bad.service';
      units.push(unit);
      await writeDropIn(harness, unit, ['Environment=WRONG=not-the-token-0123456789']);
      const install = await gatewayCli(harness, ['install', '--worker', 'bad', '--now']);
      assert.equal(install.code, 0, install.stderr);
      const failed = await harness.waitFor(
        async () => {
          const p = await harness.show(unit, ['ActiveState', 'ExecMainStatus', 'NRestarts']);
          return p.ActiveState === 'failed' && p;
        },
        30_000,
        { what: 'worker failed' },
      );
      assert.equal(failed.ExecMainStatus, '78');
      assert.equal(failed.NRestarts, '0');
    });
  },
);
