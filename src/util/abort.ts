/** Waiting on an abort signal as a promise. */

/** Resolves null once `signal` aborts (at once if it already has); never rejects. */
export function untilAborted(signal: AbortSignal): Promise<null> {
  if (signal.aborted) return Promise.resolve(null);
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(null), { once: true }),
  );
}
