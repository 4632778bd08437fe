// GraphQL over fetch, and a graphql-transport-ws client written by hand over WebSocket.

const KEY = "hookline.apiKey";
const ENDPOINT = "/graphql";

export class ApiError extends Error {
  constructor(message, code, fields = []) {
    super(message);
    this.code = code;
    this.fields = fields; // [{field, message}] for BAD_USER_INPUT
  }
}

export const storedKey = () => sessionStorage.getItem(KEY);
export const storeKey = (key) => sessionStorage.setItem(KEY, key);
export const forgetKey = () => sessionStorage.removeItem(KEY);

let onUnauthenticated = () => {};
export function whenUnauthenticated(handler) {
  onUnauthenticated = handler;
}

/** Runs one operation with the given key (the stored one by default); resolves to `data`. */
export async function gql(query, variables = {}, key = storedKey()) {
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError("The server cannot be reached. Check your connection and try again.", "NETWORK");
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The server answered HTTP ${response.status}.`, "HTTP");
  }
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    const code = first.extensions?.code || "ERROR";
    const fields = body.errors.flatMap((e) => e.extensions?.fields || []);
    const error = new ApiError(first.message, code, fields);
    if (code === "UNAUTHENTICATED" && key === storedKey()) onUnauthenticated(error);
    throw error;
  }
  return body.data;
}

/**
 * One graphql-transport-ws connection for the session, shared by every subscription; it reconnects
 * by itself, and each subscription resumes from the variables it gives at that moment (a cursor).
 */
export class LiveClient {
  constructor(key) {
    this.key = key;
    this.subscriptions = new Map();
    this.statusListeners = new Set();
    this.status = "idle";
    this.socket = null;
    this.nextId = 1;
    this.retry = 0;
    this.closed = false;
    this.timer = null;
  }

  onStatus(listener) {
    this.statusListeners.add(listener);
    listener(this.status);
    return () => this.statusListeners.delete(listener);
  }

  setStatus(status) {
    this.status = status;
    for (const listener of this.statusListeners) listener(status);
  }

  /** `variables` is a function, asked again on every (re)subscription. Returns the unsubscribe. */
  subscribe(query, variables, onNext, onError = () => {}) {
    const id = String(this.nextId++);
    this.subscriptions.set(id, { query, variables, onNext, onError });
    if (this.status === "live") this.sendSubscribe(id);
    else this.connect();
    return () => {
      if (!this.subscriptions.delete(id)) return;
      if (this.status === "live") this.send({ id, type: "complete" });
    };
  }

  connect() {
    if (this.closed || this.socket) return;
    clearTimeout(this.timer);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${ENDPOINT}`, "graphql-transport-ws");
    this.socket = socket;
    this.setStatus(this.retry ? "reconnecting" : "connecting");
    socket.onopen = () =>
      this.send({ type: "connection_init", payload: { Authorization: `Bearer ${this.key}` } });
    socket.onmessage = (event) => this.receive(JSON.parse(event.data));
    socket.onclose = (event) => {
      this.socket = null;
      if (this.closed) return;
      if (event.code === 4403) {
        this.setStatus("refused");
        return;
      }
      this.setStatus("reconnecting");
      const delay = Math.min(10000, 500 * 2 ** this.retry);
      this.retry += 1;
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  receive(message) {
    switch (message.type) {
      case "connection_ack":
        this.retry = 0;
        this.setStatus("live");
        for (const id of this.subscriptions.keys()) this.sendSubscribe(id);
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "next": {
        const subscription = this.subscriptions.get(message.id);
        if (!subscription) break;
        if (message.payload.errors?.length) subscription.onError(message.payload.errors[0]);
        else subscription.onNext(message.payload.data);
        break;
      }
      case "error":
        this.subscriptions.get(message.id)?.onError(message.payload?.[0] || { message: "error" });
        this.subscriptions.delete(message.id);
        break;
      default:
        break;
    }
  }

  sendSubscribe(id) {
    const { query, variables } = this.subscriptions.get(id);
    this.send({ id, type: "subscribe", payload: { query, variables: variables() } });
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.subscriptions.clear();
    if (this.socket) this.socket.close(1000, "signed out");
    this.socket = null;
    this.setStatus("idle");
  }
}
