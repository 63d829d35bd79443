import type { Adapter, OutboundMessage, SendResult } from '../adapters/contract.js';
import { GatewayError, toGatewayError } from '../errors.js';
import type { DeliveryResult, GatewayMetrics } from '../metrics.js';
import './errors.js';

export interface DeliverOptions {
  /** The whole send, the adapter's own retries included, must settle within this. */
  timeoutMs: number;
  /** Aborted when the gateway stops. */
  signal: AbortSignal;
  metrics: GatewayMetrics;
}

/**
 * Hands one message to `adapter.send` under a deadline, counting the outcome in
 * `hermes_deliveries_total`. Resolves with the platform's ids; rejects with the adapter's
 * GatewayError, `GW_ERR_DELIVERY_TIMEOUT` when the deadline passed (the adapter's signal is
 * aborted and its promise is left to settle on its own), `GW_ERR_HANDLER_CANCELLED` when
 * `signal` aborted, or `GW_ERR_DELIVERY_FAILED` for an uncoded rejection. Never waits longer
 * than the deadline, so a stuck adapter cannot hold a conversation (or a shutdown) hostage.
 */
export async function deliver(
  adapter: Adapter,
  message: OutboundMessage,
  options: DeliverOptions,
): Promise<SendResult> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(
        new GatewayError(
          'GW_ERR_DELIVERY_TIMEOUT',
          `${adapter.name}: send did not finish within ${options.timeoutMs} ms`,
          { details: { platform: adapter.name, timeout_ms: options.timeoutMs } },
        ),
      );
      controller.abort();
    }, options.timeoutMs);
    onAbort = () => {
      reject(new GatewayError('GW_ERR_HANDLER_CANCELLED', 'delivery cancelled: stopping'));
      controller.abort();
    };
    if (options.signal.aborted) onAbort();
    else options.signal.addEventListener('abort', onAbort, { once: true });
  });
  // A synchronous throw inside send() becomes a rejection like any other.
  const sending = Promise.resolve().then(() => adapter.send(message, controller.signal));
  let result: DeliveryResult = 'error';
  try {
    const sent = await Promise.race([sending, stopped]);
    result = 'ok';
    return sent;
  } catch (err) {
    const error = toGatewayError(err, 'GW_ERR_DELIVERY_FAILED');
    if (error.code === 'GW_ERR_DELIVERY_TIMEOUT') result = 'timeout';
    throw error;
  } finally {
    clearTimeout(timer);
    if (onAbort) options.signal.removeEventListener('abort', onAbort);
    // The loser of the race is settled by nobody else; its outcome no longer matters.
    sending.catch(() => undefined);
    stopped.catch(() => undefined);
    options.metrics.deliveriesTotal.inc({ platform: adapter.name, result });
  }
}
