/**
 * inspectServiceUnit (what `status` and `doctor` compare, issue 14) on unit files alone, no
 * manager: a unit written before template versions keeps its config in the refresh command,
 * whatever ExecStart= had to escape in its path; the current text is `current`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  inspectServiceUnit,
  renderServiceUnit,
  templateVersion,
  UNIT_MARKER,
} from '../../src/systemd/install.js';
import { scratchRoot } from '../support/spawn-gateway.js';

const root = await scratchRoot('hgw-inspect-');
const env = { ...process.env, XDG_CONFIG_HOME: join(root, 'xdg') };
const unitDir = join(root, 'xdg', 'systemd', 'user');
await mkdir(unitDir, { recursive: true });

/** What the version before template versions wrote: the marker, then the template's text. */
function asTemplateOne(text: string): string {
  return text
    .split('\n')
    .filter((line, i) => i === 0 || !line.startsWith('# hermes-gateway-'))
    .join('\n');
}

for (const config of [
  join(root, 'plain', 'config.yaml'),
  join(root, 'we ird %h $HOME ${USER} "dq" \'sq\' back\\slash; x', 'config.yaml'),
]) {
  await test(`a template-1 unit keeps its config in the refresh command: ${config}`, async () => {
    const unit = `hgw-inspect-${Math.random().toString(36).slice(2, 8)}.service`;
    const current = await renderServiceUnit(config);
    assert.equal(templateVersion(current), 2);
    assert.ok(current.startsWith(`${UNIT_MARKER}\n`));
    await writeFile(join(unitDir, unit), asTemplateOne(current));
    const stale = await inspectServiceUnit(unit, env);
    assert.equal(stale.state, 'stale');
    assert.equal(stale.installed_template, 1);
    assert.equal(stale.template, 2);
    assert.equal(stale.config, config);
    // The printed command, run by a shell, passes the very path back.
    const words = spawnSync('sh', ['-c', `printf '%s\\n' ${stale.refresh}`], { encoding: 'utf8' });
    assert.deepEqual(words.stdout.split('\n').slice(0, -1), [
      'hermes-gateway',
      'install',
      '--force',
      '--config',
      config,
      '--unit',
      unit,
    ]);
    await writeFile(join(unitDir, unit), current);
    const fresh = await inspectServiceUnit(unit, env);
    assert.deepEqual([fresh.state, fresh.refresh, fresh.config], ['current', null, config]);
  });
}
