/**
 * The message subscriptions of one mounted scene (`ctx.onMessage`), by message type.
 *
 * Messages of a stateful type (`STATEFUL_TYPES`: each one is the whole current state, such as a
 * `game_status`) are kept, the latest per type, for as long as the scene is mounted; a handler
 * that subscribes after one arrived gets that latest one at once (in a microtask, so never before
 * `onMessage` has returned), unless a newer one reached it first. So a subscriber that comes late
 * (a plugin runtime whose client module loaded after the server's first status) starts from the
 * current state, like one that was there from the start.
 */

export type MessageHandler = (msg: any) => void;

/** Message types whose latest message is the current state, handed to late subscribers. */
export const STATEFUL_TYPES: ReadonlySet<string> = new Set(["game_status"]);

export class Subscriptions {
  private readonly handlers = new Map<string, Set<MessageHandler>>();
  private readonly latest = new Map<string, Record<string, any>>();
  private closed = false;

  /** Subscribe `handler` to messages of `type`; returns the unsubscribe function. */
  subscribe(type: string, handler: MessageHandler): () => void {
    if (this.closed) return () => {};
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler);
    const current = this.latest.get(type);
    if (current !== undefined) {
      queueMicrotask(() => {
        // Not if it unsubscribed meanwhile, or a newer message was dispatched to it already.
        if (this.handlers.get(type)?.has(handler) && this.latest.get(type) === current) {
          this.call(handler, current);
        }
      });
    }
    return () => {
      this.handlers.get(type)?.delete(handler);
    };
  }

  /** Hand `msg` to the handlers of its type (and keep it, when its type is stateful). */
  dispatch(msg: Record<string, any>): void {
    if (this.closed) return;
    const type = String(msg.type);
    if (STATEFUL_TYPES.has(type)) this.latest.set(type, msg);
    const set = this.handlers.get(type);
    if (!set || set.size === 0) return;
    for (const handler of [...set]) this.call(handler, msg);
  }

  /** How many handlers are subscribed (all types). */
  get size(): number {
    let n = 0;
    for (const set of this.handlers.values()) n += set.size;
    return n;
  }

  /** Unsubscribe everyone and forget the kept messages; later calls do nothing. */
  close(): void {
    this.closed = true;
    this.handlers.clear();
    this.latest.clear();
  }

  private call(handler: MessageHandler, msg: Record<string, any>): void {
    try {
      handler(msg);
    } catch (err) {
      console.error(`igym: a "${String(msg.type)}" message handler failed`, err);
    }
  }
}
