import type { Handler } from './handler.js';

/** Replies with the inbound text; the demo's handler. */
export function createEchoHandler(): Handler {
  return {
    type: 'echo',
    handle: (event) => Promise.resolve(event.text.trim() === '' ? [] : [{ text: event.text }]),
  };
}
