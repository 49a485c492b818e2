// A small SignalR client: the JSON hub protocol over WebSockets, what the console needs and no more
// (negotiate v1, handshake, invoke / send, client methods via on(), pings, Close). The wire is
// described in protocol-notes/reader.md and the SignalR references there; any @microsoft/signalr
// client works against the same hubs.

const RS = "\x1e";
const PING_INTERVAL_MS = 15000; // as @microsoft/signalr: a Ping after 15 s without sending
const SERVER_TIMEOUT_MS = 30000; // the server pings every 15 s; 30 s of silence = it is gone

export class HubError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "HubError";
    this.status = status ?? null; // an HTTP status when negotiate failed (401: bad token)
  }
}

export class HubConnection {
  // url: the hub's http(s) URL (e.g. location.origin + "/reader"); accessToken: a function or string.
  constructor(url, { accessToken } = {}) {
    this.url = url;
    this.accessToken = typeof accessToken === "function" ? accessToken : () => accessToken;
    this.handlers = new Map(); // lower-cased method name -> [handler]
    this.closeHandlers = [];
    this.pending = new Map(); // invocationId -> {resolve, reject}
    this.nextId = 1;
    this.ws = null;
    this.buffer = "";
    this.state = "Disconnected"; // Connecting | Connected | Disconnected
    this.timers = [];
    this.lastSent = 0;
    this.lastReceived = 0;
  }

  on(name, handler) {
    const key = name.toLowerCase();
    if (!this.handlers.has(key)) this.handlers.set(key, []);
    this.handlers.get(key).push(handler);
  }

  onclose(handler) {
    this.closeHandlers.push(handler);
  }

  async start() {
    if (this.state !== "Disconnected") throw new HubError("The connection is already started.");
    this.state = "Connecting";
    this.closeError = undefined;
    try {
      const token = this.accessToken();
      const response = await fetch(`${this.url}/negotiate?negotiateVersion=1`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "X-Requested-With": "XMLHttpRequest" },
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok || body.error) {
        throw new HubError(body.error || `negotiate failed with HTTP ${response.status}`, response.status);
      }
      if (!(body.availableTransports || []).some((t) => t.transport === "WebSockets")) {
        throw new HubError("the hub does not offer WebSockets");
      }
      const id = body.connectionToken ?? body.connectionId;
      const wsUrl = new URL(this.url);
      wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
      wsUrl.searchParams.set("id", id);
      // Browsers cannot set headers on a WebSocket: the token goes in the query (the hub redacts it from logs).
      wsUrl.searchParams.set("access_token", token);
      await this.open(wsUrl.toString());
      this.state = "Connected";
      this.lastReceived = Date.now();
      this.timers.push(setInterval(() => this.tick(), 1000));
    } catch (error) {
      this.state = "Disconnected";
      if (this.ws) this.ws.close();
      this.ws = null;
      throw error;
    }
  }

  open(url) {
    return new Promise((resolve, reject) => {
      const ws = (this.ws = new WebSocket(url));
      let handshaken = false;
      ws.onopen = () => this.write(JSON.stringify({ protocol: "json", version: 1 }) + RS);
      ws.onmessage = (message) => {
        if (typeof message.data !== "string") return; // JSON protocol: text frames only
        this.buffer += message.data;
        const records = this.buffer.split(RS);
        this.buffer = records.pop();
        for (const record of records) {
          const value = JSON.parse(record);
          if (!handshaken) {
            handshaken = true;
            if (value.error) {
              reject(new HubError(`handshake refused: ${value.error}`));
              ws.close();
              return;
            }
            resolve();
            continue;
          }
          this.dispatch(value);
        }
      };
      ws.onerror = () => {
        if (!handshaken) reject(new HubError("the WebSocket could not be opened"));
      };
      ws.onclose = (event) => {
        if (!handshaken) {
          reject(new HubError(`the WebSocket closed before the handshake (code ${event.code})`));
          return;
        }
        const said = this.closeError; // what a Close message (or stop, or the timeout) said, if anything did
        this.closed(said !== undefined ? said : event.code === 1000 ? null : new HubError(`WebSocket closed with code ${event.code}`));
      };
    });
  }

  dispatch(message) {
    this.lastReceived = Date.now();
    switch (message.type) {
      case 1: {
        // Invocation: a client method the hub calls
        const handlers = this.handlers.get(String(message.target).toLowerCase()) || [];
        for (const handler of handlers) {
          try {
            handler(...(message.arguments || []));
          } catch (error) {
            console.error(`handler for ${message.target} failed`, error);
          }
        }
        break;
      }
      case 3: {
        // Completion
        const waiting = this.pending.get(message.invocationId);
        if (!waiting) break;
        this.pending.delete(message.invocationId);
        if (message.error) waiting.reject(new HubError(message.error));
        else waiting.resolve(message.result ?? null);
        break;
      }
      case 7: // Close: the server ends the connection, maybe saying why
        this.closeError = message.error ? new HubError(message.error) : null;
        this.ws.close(1000);
        break;
      default: // 6 Ping, and anything newer: nothing to do
        break;
    }
  }

  write(text) {
    this.ws.send(text);
    this.lastSent = Date.now();
  }

  invoke(target, ...args) {
    if (this.state !== "Connected") return Promise.reject(new HubError("Not connected."));
    const invocationId = String(this.nextId++);
    return new Promise((resolve, reject) => {
      this.pending.set(invocationId, { resolve, reject });
      this.write(JSON.stringify({ type: 1, invocationId, target, arguments: args }) + RS);
    });
  }

  send(target, ...args) {
    if (this.state !== "Connected") throw new HubError("Not connected.");
    this.write(JSON.stringify({ type: 1, target, arguments: args }) + RS);
  }

  tick() {
    const now = Date.now();
    if (now - this.lastReceived > SERVER_TIMEOUT_MS) {
      this.closeError = new HubError("Server timeout elapsed without receiving a message from the server.");
      this.ws.close(1000);
    } else if (now - this.lastSent >= PING_INTERVAL_MS) {
      this.write(JSON.stringify({ type: 6 }) + RS);
    }
  }

  stop() {
    if (this.state !== "Connected") return;
    this.closeError = null;
    this.write(JSON.stringify({ type: 7 }) + RS);
    this.ws.close(1000);
  }

  closed(error) {
    if (this.state === "Disconnected") return;
    this.state = "Disconnected";
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    const failure = error ?? new HubError("The connection was closed.");
    for (const waiting of this.pending.values()) waiting.reject(failure);
    this.pending.clear();
    this.ws = null;
    this.buffer = "";
    for (const handler of this.closeHandlers) handler(error);
  }
}
