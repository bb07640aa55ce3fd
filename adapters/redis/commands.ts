import { SessionConfigError } from "../../src/core/errors.js";

/**
 * The commands RedisStore sends, and the client state it reads, in ioredis's shape. An ioredis
 * `Redis` or `Cluster` is one as it is (no wrapper on the hot path); a node-redis client is adapted
 * by {@link nodeRedisCommands}.
 */
export interface RedisCommands {
  /** ioredis's connection status: `wait` (never connected), `connecting`, `ready`, `reconnecting`, `end`... */
  readonly status: string;
  readonly isCluster: boolean;
  readonly options: { keyPrefix?: unknown; enableAutoPipelining?: boolean };
  get(key: string): Promise<string | null>;
  getex(key: string, ex: "EX", seconds: number): Promise<string | null>;
  set(key: string, value: string, ex: "EX", seconds: number, mode: "NX" | "XX"): Promise<"OK" | null>;
  expire(key: string, seconds: number): Promise<number>;
  del(key: string): Promise<number>;
  ttl(key: string): Promise<number>;
  zrem(key: string, member: string): Promise<number>;
  evalsha(sha: string, numKeys: number, key: string, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, key: string, ...args: (string | number)[]): Promise<unknown>;
  connect(): Promise<unknown>;
  on(event: "error" | "ready" | "end", listener: (err: Error) => void): unknown;
  once(event: "ready", listener: () => void): unknown;
  off(event: "error" | "ready" | "end", listener: (err: Error) => void): unknown;
  listenerCount(event: "error"): number;
}

/** One server of a deployment: what listing and readiness send to each master. */
export interface RedisNodeCommands {
  scan(cursor: string, match: "MATCH", pattern: string, count: "COUNT", n: number, type: "TYPE", kind: "string"): Promise<[string, string[]]>;
  ping(): Promise<unknown>;
}

/** A Cluster in ioredis's shape: its masters, each a {@link RedisNodeCommands}. */
export interface RedisClusterCommands extends RedisCommands {
  nodes(role: "master"): RedisNodeCommands[];
}

type Listener = (err: Error) => void;

/**
 * A node-redis client (`createClient()` from `redis` 4.6 or later), described by what RedisStore
 * uses so that `redis` stays an optional dependency.
 */
export interface NodeRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  sendCommand(...args: never[]): Promise<unknown>;
  connect(): Promise<unknown>;
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
  listenerCount(event: string): number;
}

/** A node-redis Cluster (`createCluster()` from `redis` 4.6 or later), described by what RedisStore uses. */
export interface NodeRedisCluster {
  readonly isOpen: boolean;
  sendCommand(...args: never[]): Promise<unknown>;
  nodeClient(node: never): unknown;
  connect(): Promise<unknown>;
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
  listenerCount(event: string): number;
}

// What the adapter calls, typed precisely (node-redis's own types are generic over modules and replies).
type Args = (string | number)[];
interface Emitter {
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
  listenerCount(event: string): number;
}
interface StandaloneClient extends Emitter {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  sendCommand(args: string[]): Promise<unknown>;
  connect(): Promise<unknown>;
  options?: { disableOfflineQueue?: boolean; socket?: { reconnectStrategy?: unknown } };
  /** node-redis 4 with `legacyMode: true`: the promise API lives here. */
  v4?: { sendCommand(args: string[]): Promise<unknown> };
}
interface ClusterClient extends Emitter {
  readonly isOpen: boolean;
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]): Promise<unknown>;
  nodeClient(node: unknown): StandaloneClient | Promise<StandaloneClient>;
  connect(): Promise<unknown>;
  readonly masters?: unknown[];
  getMasters?(): unknown[];
  _options?: { defaults?: { disableOfflineQueue?: boolean; socket?: { reconnectStrategy?: unknown } } };
  options?: { defaults?: { disableOfflineQueue?: boolean; socket?: { reconnectStrategy?: unknown } } };
}

/** Whether `client` looks like a node-redis client or Cluster (v4 and later). */
export function isNodeRedis(client: unknown): client is NodeRedisClient | NodeRedisCluster {
  if (typeof client !== "object" || client === null) return false;
  const c = client as Record<string, unknown>;
  return typeof c.sendCommand === "function" && typeof c.isOpen === "boolean" && typeof c.status !== "string";
}

function isNodeRedisCluster(client: NodeRedisClient | NodeRedisCluster): client is NodeRedisCluster {
  return typeof (client as { nodeClient?: unknown }).nodeClient === "function";
}

function strings(args: Args): string[] {
  return args.map(String);
}

/**
 * RedisStore's commands over a node-redis client or Cluster: every command is one `sendCommand`
 * (node-redis routes a Cluster's by its key and follows `MOVED`/`ASK` itself); events and states are
 * mapped to ioredis's names. Refuses at construction a client that would never reconnect.
 */
export function nodeRedisCommands(client: NodeRedisClient | NodeRedisCluster): RedisCommands | RedisClusterCommands {
  return isNodeRedisCluster(client) ? new NodeRedisClusterCommands(client as unknown as ClusterClient) : new NodeRedisStandaloneCommands(client as unknown as StandaloneClient);
}

function checkReconnect(strategy: unknown, where: string): void {
  if (strategy === false) {
    throw new SessionConfigError(
      `RedisStore: the node-redis client has ${where}reconnectStrategy: false: after the first dropped connection it would never come back and every session request would fail until a restart. Leave it out or give a function (e.g. (retries) => Math.min(50 * 2 ** retries, 2000))`,
    );
  }
}

/** Shared by both: the store's events under ioredis's names, and the calls in ioredis's signatures. */
abstract class NodeRedisBase implements RedisCommands {
  abstract readonly isCluster: boolean;
  readonly options = {};
  /** Event names of node-redis for the store's `ready` and `end`; `error` may map to several. */
  protected abstract readonly events: { error: string[]; ready: string; end: string };
  readonly #emitter: Emitter;
  /** The store's listeners as registered on the client, to remove them again. */
  readonly #registered = new Map<Listener, { event: string; listener: Listener }[]>();
  /** Seen connected once: a later non-ready state is an outage, not a start. */
  protected everReady = false;
  /** Seen closed after being open: the app closed it. */
  protected ended = false;

  constructor(emitter: Emitter) {
    this.#emitter = emitter;
  }

  abstract get status(): string;
  protected abstract send(key: string | undefined, readonly: boolean, args: string[]): Promise<unknown>;
  abstract connect(): Promise<unknown>;

  /** Node-redis's own listeners, that keep {@link everReady} and {@link ended} up to date. */
  protected track(ready: string, end: string): void {
    this.#emitter.on(ready, () => {
      this.everReady = true;
      this.ended = false;
    });
    this.#emitter.on(end, () => {
      this.ended = true;
    });
  }

  get(key: string): Promise<string | null> {
    return this.send(key, true, ["GET", key]) as Promise<string | null>;
  }
  getex(key: string, ex: "EX", seconds: number): Promise<string | null> {
    return this.send(key, false, ["GETEX", key, ex, String(seconds)]) as Promise<string | null>;
  }
  set(key: string, value: string, ex: "EX", seconds: number, mode: "NX" | "XX"): Promise<"OK" | null> {
    return this.send(key, false, ["SET", key, value, ex, String(seconds), mode]) as Promise<"OK" | null>;
  }
  expire(key: string, seconds: number): Promise<number> {
    return this.send(key, false, ["EXPIRE", key, String(seconds)]) as Promise<number>;
  }
  del(key: string): Promise<number> {
    return this.send(key, false, ["DEL", key]) as Promise<number>;
  }
  ttl(key: string): Promise<number> {
    return this.send(key, true, ["TTL", key]) as Promise<number>;
  }
  zrem(key: string, member: string): Promise<number> {
    return this.send(key, false, ["ZREM", key, member]) as Promise<number>;
  }
  evalsha(sha: string, numKeys: number, key: string, ...args: Args): Promise<unknown> {
    return this.send(key, false, ["EVALSHA", sha, String(numKeys), key, ...strings(args)]);
  }
  eval(script: string, numKeys: number, key: string, ...args: Args): Promise<unknown> {
    return this.send(key, false, ["EVAL", script, String(numKeys), key, ...strings(args)]);
  }

  #names(event: "error" | "ready" | "end"): string[] {
    return event === "error" ? this.events.error : [this.events[event]];
  }
  on(event: "error" | "ready" | "end", listener: Listener): this {
    const entries = this.#registered.get(listener) ?? [];
    for (const name of this.#names(event)) {
      this.#emitter.on(name, listener);
      entries.push({ event: name, listener });
    }
    this.#registered.set(listener, entries);
    return this;
  }
  once(event: "ready", listener: () => void): this {
    const wrapped = () => {
      this.off(event, wrapped);
      listener();
    };
    const entries = this.#registered.get(listener) ?? [];
    this.#emitter.on(this.events.ready, wrapped);
    entries.push({ event: this.events.ready, listener: wrapped });
    this.#registered.set(listener, entries);
    this.#registered.set(wrapped, [{ event: this.events.ready, listener: wrapped }]);
    return this;
  }
  off(event: "error" | "ready" | "end", listener: Listener): this {
    const names = this.#names(event);
    const entries = this.#registered.get(listener) ?? [];
    const rest = entries.filter((entry) => {
      if (!names.includes(entry.event)) return true;
      this.#emitter.off(entry.event, entry.listener);
      return false;
    });
    if (rest.length === 0) this.#registered.delete(listener);
    else this.#registered.set(listener, rest);
    return this;
  }
  listenerCount(event: "error"): number {
    return this.#emitter.listenerCount(this.events[event][0]!);
  }
}

class NodeRedisStandaloneCommands extends NodeRedisBase {
  readonly isCluster = false;
  protected readonly events = { error: ["error"], ready: "ready", end: "end" };
  readonly #client: StandaloneClient;
  readonly #send: (args: string[]) => Promise<unknown>;

  constructor(client: StandaloneClient) {
    super(client);
    checkReconnect(client.options?.socket?.reconnectStrategy, "socket.");
    this.#client = client;
    const promises = typeof client.v4 === "object" && client.v4 !== null ? client.v4 : client;
    this.#send = (args) => promises.sendCommand(args);
    this.everReady = client.isReady;
    this.track("ready", "end");
  }

  get status(): string {
    const client = this.#client;
    if (client.isReady) return "ready";
    if (client.isOpen) return this.everReady ? "reconnecting" : "connecting";
    return this.ended ? "end" : "wait";
  }

  protected send(_key: string | undefined, _readonly: boolean, args: string[]): Promise<unknown> {
    return this.#send(args);
  }

  connect(): Promise<unknown> {
    return this.#client.connect();
  }

  /** The one server, as a node of the deployment. */
  scan(cursor: string, match: "MATCH", pattern: string, count: "COUNT", n: number, type: "TYPE", kind: "string"): Promise<[string, string[]]> {
    return this.#send(["SCAN", cursor, match, pattern, count, String(n), type, kind]) as Promise<[string, string[]]>;
  }
  ping(): Promise<unknown> {
    return this.#send(["PING"]);
  }
}

class NodeRedisClusterCommands extends NodeRedisBase implements RedisClusterCommands {
  readonly isCluster = true;
  // A Cluster reports its nodes' connection errors as `node-error`: both are the store's "client error".
  protected readonly events = { error: ["error", "node-error"], ready: "connect", end: "disconnect" };
  readonly #cluster: ClusterClient;

  constructor(cluster: ClusterClient) {
    super(cluster);
    const options = cluster._options ?? cluster.options;
    checkReconnect(options?.defaults?.socket?.reconnectStrategy, "defaults.socket.");
    this.#cluster = cluster;
    this.everReady = cluster.isOpen && this.#masters().length > 0;
    this.track("connect", "disconnect");
  }

  get status(): string {
    const cluster = this.#cluster;
    if (cluster.isOpen) return this.everReady ? "ready" : "connecting";
    return this.ended ? "end" : "wait";
  }

  protected send(key: string | undefined, readonly: boolean, args: string[]): Promise<unknown> {
    return this.#cluster.sendCommand(key, readonly, args);
  }

  connect(): Promise<unknown> {
    return this.#cluster.connect();
  }

  #masters(): unknown[] {
    return this.#cluster.masters ?? this.#cluster.getMasters?.() ?? [];
  }

  nodes(_role: "master"): RedisNodeCommands[] {
    return this.#masters().map((master) => {
      const send = async (args: string[]) => (await this.#cluster.nodeClient(master)).sendCommand(args);
      return {
        scan: (cursor, match, pattern, count, n, type, kind) => send(["SCAN", cursor, match, pattern, count, String(n), type, kind]) as Promise<[string, string[]]>,
        ping: () => send(["PING"]),
      };
    });
  }
}
