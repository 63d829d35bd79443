/**
 * Scale-out end to end (docs/scale-out.md), real nats-server: the gateway publishes each QQ
 * event to JetStream, a worker answers, the reply comes back through the broker and the QQ
 * fake receives it, once.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { gatewayReady, startScaleOut } from '../support/scale-out.js';
import { killAllChildren, waitFor } from '../support/spawn-gateway.js';

after(() => killAllChildren());

await test('round trip: QQ event -> gateway -> broker -> worker -> reply -> QQ, once', async (t) => {
  const s = await startScaleOut();
  t.after(() => s.dispose());
  const gateway = await s.startGateway();
  await gateway.waitForState(s.statePath, gatewayReady, 'running with the broker up', 20_000);
  await s.startWorker();
  const openid = 'user-rt';
  for (let i = 0; i < 5; i++)
    s.fake.dispatchC2CMessage({ content: `hello ${i}`, userOpenid: openid });
  await waitFor(() => s.delivered().length >= 5 && true, 'five replies delivered', 20_000);
  assert.deepEqual(
    s.delivered(),
    [0, 1, 2, 3, 4].map((i) => `hello ${i}`),
  );
  s.fake.assertNoViolations();
  gateway.signal('SIGTERM');
  assert.equal((await gateway.waitForExit(10_000)).code, 0);
});
