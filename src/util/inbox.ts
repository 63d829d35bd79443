/**
 * A queue with one consumer, for a connection's loop: socket and timer callbacks push items,
 * one loop takes them in order, so every state change of a connection happens in one place.
 * Shared by the QQ and Discord gateway connections.
 */
export class Inbox<T> {
  private readonly items: T[] = [];
  private waiter: ((item: T) => void) | null = null;

  push(item: T): void {
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter(item);
    } else {
      this.items.push(item);
    }
  }

  /** The next queued item, or undefined when none is waiting (no promise on the hot path). */
  poll(): T | undefined {
    return this.items.shift();
  }

  /** Waits for the next item; call only after poll() came back empty. */
  take(): Promise<T> {
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }
}
