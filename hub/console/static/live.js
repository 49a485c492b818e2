// A Reader hub connection that comes back: it reconnects with back-off after the hub restarts (or
// the network drops) and then makes every subscription it holds again, before telling
// onReconnected handlers (which fill the gap from the HTTP API). Subscriptions are desired state:
// subscribe() records one and makes it when connected; unsubscribe() forgets and ends it.
import { HubConnection } from "./signalr.js";
import { pageUrl } from "./http.js";

const RETRY_MS = [500, 1000, 2000, 5000];

export class LiveReader {
  constructor(ctx) {
    this.ctx = ctx;
    this.handlers = []; // [target, handler]
    this.stateHandlers = [];
    this.reconnectHandlers = [];
    this.subscriptions = new Map(); // key -> {method, args}; bounded by the callers (visible rows, one chart)
    this.conn = null;
    this.running = false;
    this.retries = 0;
    this.connectedOnce = false;
    this.waiters = [];
  }

  on(target, handler) {
    this.handlers.push([target, handler]);
  }

  onState(handler) {
    this.stateHandlers.push(handler);
  }

  onReconnected(handler) {
    this.reconnectHandlers.push(handler);
  }

  get connected() {
    return this.conn !== null;
  }

  // Resolves once connected (at once if already).
  ready() {
    return this.conn ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  // Ends the connection and forgets every subscription (a new start subscribes afresh).
  stop() {
    this.running = false;
    this.subscriptions.clear();
    const conn = this.conn;
    this.conn = null;
    if (conn) conn.stop();
  }

  async connect() {
    if (!this.running || !this.ctx.token()) return;
    const conn = new HubConnection(pageUrl("reader"), { accessToken: () => this.ctx.token() });
    for (const [target, handler] of this.handlers) conn.on(target, handler);
    conn.onclose(() => {
      if (this.conn !== conn) return; // stopped
      this.conn = null;
      this.emit("down");
      this.retry();
    });
    try {
      await conn.start();
    } catch (error) {
      if (error.status === 401) return this.ctx.refused();
      this.emit("down");
      return this.retry();
    }
    if (!this.running) return conn.stop();
    this.conn = conn;
    this.retries = 0;
    const again = this.connectedOnce;
    this.connectedOnce = true;
    await Promise.all([...this.subscriptions.values()].map(({ method, args }) => conn.invoke(method, ...args).catch(() => {})));
    this.emit("live");
    for (const resolve of this.waiters.splice(0)) resolve();
    if (again) for (const handler of this.reconnectHandlers) handler();
  }

  retry() {
    if (!this.running) return;
    const delay = RETRY_MS[Math.min(this.retries++, RETRY_MS.length - 1)];
    setTimeout(() => this.running && !this.conn && this.connect(), delay);
  }

  emit(state) {
    for (const handler of this.stateHandlers) handler(state);
  }

  // Records the subscription and, when connected, makes it: resolves once it is in effect.
  async subscribe(key, method, ...args) {
    this.subscriptions.set(key, { method, args });
    if (this.conn) await this.conn.invoke(method, ...args);
  }

  // Forgets the subscriptions `keys` and ends them with one call (e.g. UnsubscribeFromStream).
  async unsubscribe(keys, method, ...args) {
    for (const key of keys) this.subscriptions.delete(key);
    if (this.conn) await this.conn.invoke(method, ...args).catch(() => {});
  }
}
