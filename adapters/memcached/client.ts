import memjs from "memjs";
import { SessionConfigError } from "../../src/core/errors.js";
import { KetamaContinuum } from "./ketama.js";
import { guardStaleSockets } from "./stale-sockets.js";

/** An option in seconds, > 0 (fractions allowed), or `fallback` when not given. */
export function positiveSeconds(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
    throw new SessionConfigError(`MemcachedStore: ${name} must be a number of seconds > 0, got ${String(value)}`);
  }
  return value;
}

/** Options of {@link createMemcachedClient}. Durations in seconds. */
export interface MemcachedClientOptions {
  /**
   * Seconds one attempt waits for an answer before memjs drops the connection and fails (or retries) it.
   * @default 0.4
   */
  timeout?: number;
  /**
   * Seconds to open a connection.
   * @default same as `timeout`
   */
  connectTimeout?: number;
  /**
   * Retries after a failed attempt (memjs's own `retries` option counts attempts; this helper
   * passes `retries + 1`). With the defaults a dead server fails a call in about 0.85 s, inside the
   * store's 1 s `timeout`.
   * @default 1
   */
  retries?: number;
  /**
   * Seconds between a failed attempt and its retry.
   * @default 0.05
   */
  retryDelay?: number;
  /**
   * Move a failed server's keys to the next server for `failoverTime` seconds. Off by default and
   * best left off for sessions: a session written to a stand-in server stays there after the real
   * one is back; a logout deletes it only on the real server, and the next failover serves the stale,
   * logged-out copy again. Each process also decides failover on its own, so two processes can read
   * the same session from different servers.
   * @default false
   */
  failover?: boolean;
  /**
   * Seconds a failed server is skipped when `failover` is on.
   * @default 60
   */
  failoverTime?: number;
  /**
   * TCP keep-alive on the connections, so a silently vanished server is noticed on idle connections.
   * @default true
   */
  keepAlive?: boolean;
  /**
   * Seconds of idleness before the first keep-alive probe.
   * @default 30
   */
  keepAliveDelay?: number;
  /**
   * How keys are placed on the servers:
   * - `"ketama"`: consistent hashing, placed exactly as libmemcached's ketama-compatible mode
   *   (PHP memcached with `OPT_LIBKETAMA_COMPATIBLE`, pylibmc with `ketama_weighted`) places them. Adding a
   *   fourth server to three moves about a quarter of the sessions, not three quarters.
   * - `"modula"`: memjs's own `hash(key) % servers`, the placement of earlier versions of this
   *   package: keep it until you can move over (see the README, "Memcached: placement").
   * @default "ketama"
   */
  distribution?: "ketama" | "modula";
  /**
   * Relative weight of each server, in the order of `servers` (whole numbers >= 1): a server of
   * weight 2 gets about twice the keys of one of weight 1. Ketama placement only.
   * @default every server 1
   */
  weights?: readonly number[];
  /** SASL user name for every server (or put `user:pass@` in a server address). */
  username?: string;
  /** SASL password for every server. */
  password?: string;
  /**
   * Where memjs writes its own failure lines. Failures also reach you as rejected calls (and through
   * the session manager's `logger`).
   * @default silent
   */
  logger?: { log(...args: unknown[]): void };
}

const SERVER_ADDRESS = /^(?:[^\s,@]+@)?[^\s,@:]+(?::\d{1,5})?$/;

/**
 * A `memjs` client with settings that suit sessions: a short per-attempt timeout, one retry,
 * failover off, TCP keep-alive on, memjs's console logging silenced, and memjs's late-close
 * reconnect bug worked around (the first request after a hung server resumes is not lost).
 *
 * @param servers `"host:port"` (or `"user:pass@host:port"`), one or many; a comma-separated string works too.
 * @example
 * const client = createMemcachedClient(process.env.MEMCACHED_SERVERS); // "host1:11211,host2:11211"; throws at boot when unset
 * const store = new MemcachedStore({ client });
 * // on shutdown: client.close();
 */
export function createMemcachedClient(servers: string | readonly string[] | undefined, options: MemcachedClientOptions = {}): memjs.Client {
  // An unset MEMCACHED_SERVERS must fail at boot with what is missing, not with "servers is not iterable".
  if (typeof servers !== "string" && !Array.isArray(servers)) {
    throw new SessionConfigError(
      `createMemcachedClient: no servers given (got ${servers === null ? "null" : typeof servers}; is MEMCACHED_SERVERS set?). Pass "host:port", "host1:port,host2:port" or an array of "host:port"`,
    );
  }
  const addresses = (typeof servers === "string" ? servers.split(",") : [...servers]).map((s) => (typeof s === "string" ? s.trim() : s));
  // memjs falls back to localhost:11211 (or environment variables) for an empty list: refuse instead.
  if (addresses.length === 0 || addresses.some((s) => typeof s !== "string" || !SERVER_ADDRESS.test(s))) {
    throw new SessionConfigError(`createMemcachedClient: servers must be one or more "host:port" addresses, got ${JSON.stringify(servers)}`);
  }
  const timeout = positiveSeconds("timeout", options.timeout, 0.4);
  const connectTimeout = positiveSeconds("connectTimeout", options.connectTimeout, timeout);
  const retries = options.retries ?? 1;
  if (!Number.isInteger(retries) || retries < 0) throw new SessionConfigError(`createMemcachedClient: retries must be a whole number >= 0, got ${String(retries)}`);
  const retryDelay = options.retryDelay === 0 ? 0 : positiveSeconds("retryDelay", options.retryDelay, 0.05);
  const silent = { log: () => {} };
  const client = memjs.Client.create(addresses.join(","), {
    timeout,
    conntimeout: connectTimeout,
    retries: retries + 1,
    retry_delay: retryDelay,
    // Off by default: see MemcachedClientOptions.failover.
    failover: options.failover ?? false,
    failoverTime: positiveSeconds("failoverTime", options.failoverTime, 60),
    keepAlive: options.keepAlive ?? true,
    keepAliveDelay: positiveSeconds("keepAliveDelay", options.keepAliveDelay, 30),
    username: options.username,
    password: options.password,
    logger: options.logger ?? silent,
  });
  guardStaleSockets(client);
  const distribution = options.distribution ?? "ketama";
  if (distribution !== "ketama" && distribution !== "modula") {
    throw new SessionConfigError(`createMemcachedClient: distribution must be "ketama" or "modula", got ${JSON.stringify(distribution)}`);
  }
  if (options.weights !== undefined && distribution !== "ketama") throw new SessionConfigError('createMemcachedClient: weights need distribution: "ketama"');
  if (distribution === "ketama") useKetama(client, options.weights);
  return client;
}

/**
 * Place the keys of a `memjs` client by ketama consistent hashing, as {@link createMemcachedClient}
 * does by default (libmemcached-compatible; see its `distribution` option), through memjs's
 * documented `getServer` hook. For a client you made with `memjs.Client.create` yourself.
 *
 * @param weights relative weight of each server, in the client's server order (default: all 1).
 * @example
 * const client = memjs.Client.create("10.0.0.1:11211,10.0.0.2:11211");
 * useKetama(client);
 */
export function useKetama(client: memjs.Client, weights?: readonly number[]): void {
  const servers = (client as unknown as { servers?: unknown }).servers;
  if (!Array.isArray(servers) || servers.length === 0) throw new SessionConfigError("useKetama: client must be a memjs Client with its servers");
  if (weights !== undefined && (!Array.isArray(weights) || weights.length !== servers.length || weights.some((w) => !Number.isInteger(w) || w < 1))) {
    throw new SessionConfigError(`useKetama: weights must be one whole number >= 1 per server (${servers.length}), got ${JSON.stringify(weights)}`);
  }
  const continuum = new KetamaContinuum(
    (servers as { host: string; port: number }[]).map((server, i) => ({ host: server.host, port: server.port, weight: weights?.[i] ?? 1 })),
  );
  // memjs asks getServer for the index of a key's server (only with two servers or more).
  (client as unknown as { getServer(key: string): number }).getServer = (key) => continuum.serverFor(key);
}
