import type { Cluster, Redis } from "ioredis";
import { SessionConfigError, SessionError } from "../src/index.js";
import type { CompareAndSetResult, OwnerEntry, OwnerIndex, SessionLogger, SessionStore, StoreCapabilities, VersionedRecord } from "../src/index.js";
import { bounded } from "../src/core/bounded.js";
import { scrubError } from "../src/core/errors.js";
import { isNodeRedis, nodeRedisCommands, type NodeRedisClient, type NodeRedisCluster, type RedisClusterCommands, type RedisCommands, type RedisNodeCommands } from "./redis/commands.js";
import { escapeGlob } from "./redis/glob.js";
import { ClientErrorLog, whenRedisReady } from "./redis/health.js";
import { followRedirects, unpipelined } from "./redis/redirect.js";
import { COMPARE_AND_SET, COMPARE_VERSION_AND_SET, OWNER_ADD, OWNER_ADD_CAPPED, OWNER_ENTRIES, OWNER_TOUCH, TAG_LENGTH, type LuaScript } from "./redis/lua.js";
import { isTag, isTaggable, newTag, tagOf, untagged } from "./redis/version.js";

export { createRedisClient } from "./redis/client.js";
export type { RedisClusterClientOptions, RedisServerClientOptions } from "./redis/client.js";
export type { NodeRedisClient, NodeRedisCluster } from "./redis/commands.js";

/** An ioredis client: a standalone or Sentinel-backed `Redis`, or a `Cluster`. */
export type RedisClient = Redis | Cluster;

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions<C extends RedisClient | NodeRedisClient | NodeRedisCluster = RedisClient | NodeRedisClient | NodeRedisCluster> {
  /**
   * The ioredis client: `new Redis(url)`, a Sentinel client (`new Redis({ sentinels, name })`) or a
   * `new Cluster(nodes)`. {@link createRedisClient} builds one with fail-fast settings. The store never
   * closes it. A `keyPrefix` set on the client is applied before {@link RedisStoreOptions.prefix}.
   *
   * Or a node-redis client (`createClient()` or `createCluster()` from `redis` 4.6+), connected or
   * not (the store connects it on first use); see the README's "With node-redis" for its settings.
   */
  client: C;
  /**
   * Prefix of every session key (`<prefix><id>`). Glob characters are allowed; listing escapes them.
   * Empty is refused unless the client has a `keyPrefix` (listing would take in every key of the database).
   * @default "sess:"
   */
  prefix?: string;
  /**
   * Seconds each store operation may take, waiting for the connection included, before it rejects.
   * Bounds every call whatever the client's own settings (a client without `commandTimeout` cannot
   * hang a request). Keep it at or below the manager's `storeTimeout`. Fractions allowed.
   * @default 1
   */
  timeout?: number;
  /**
   * `COUNT` hint of each `SCAN` step of {@link RedisStore.list}: keys the server examines per round trip.
   * @default 1000
   */
  scanCount?: number;
}

/** Codes of {@link RedisStoreError}. */
export type RedisStoreErrorCode =
  /** The operation did not finish within the store's `timeout`. */
  | "ERR_REDIS_TIMEOUT"
  /** The client was not connected (outage, reconnecting) or was closed; nothing was sent. */
  | "ERR_REDIS_NOT_CONNECTED"
  /** The server is older than Redis 6.2 and does not know `GETEX`. */
  | "ERR_REDIS_VERSION"
  /** The server or the client reported an error. */
  | "ERR_REDIS_COMMAND"
  /** The store was called with an invalid argument (such as a TTL that is not a whole number of seconds >= 1). */
  | "ERR_REDIS_ARGUMENT";

/** An operation of {@link RedisStore} failed. The message starts with `RedisStore`; `cause` holds the client's error. */
export class RedisStoreError extends SessionError {
  declare readonly code: RedisStoreErrorCode;
  /**
   * The store operation: `get`, `create`, `update`, `touch`, `destroy`, `ttl`, `compareAndSet`, `list`, `ready`,
   * or one of the owner index's `owners.add`, `owners.remove`, `owners.entries`, `owners.touch`.
   */
  readonly operation: string;

  constructor(code: RedisStoreErrorCode, operation: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.operation = operation;
  }
}

const CAPABILITIES: StoreCapabilities = Object.freeze({ refreshOnGet: true, list: true, compareAndSet: true, ownerIndex: true });
/**
 * Owner index keys live at `<prefix>owner:<owner>`. Session ids never start with this (the store
 * refuses them), so the two kinds of key cannot collide.
 */
const OWNER_NAMESPACE = "owner:";
/**
 * Rounds of compare-and-set when the version is stale but the record still equals `expected`
 * (someone rewrote the same bytes). Then the call reports a conflict and the manager's merge retries.
 */
const CAS_ROUNDS = 10;
/** Longest owner id, in characters, before escaping. */
const MAX_OWNER_LENGTH = 1024;
/** Statuses of a client that has not connected yet; any other non-ready status means an outage or a closed client. */
const STARTING = new Set(["wait", "connecting", "connect"]);
const CLOSED = new Set(["end", "disconnecting"]);

function noop(): void {}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Session store on Redis through ioredis or node-redis (Redis >= 6.2): standalone, Sentinel (ioredis) or Cluster.
 *
 * One key per session, `<prefix><id>`, holding the record as a string with the session's TTL. A read
 * that extends the idle TTL is one `GETEX key EX ttl`; create is `SET NX EX`, update `SET XX EX`,
 * touch `EXPIRE`, destroy `DEL`; compare-and-set is one Lua script on the key.
 *
 * A record in shared-session's own format is stored behind a 12-byte version tag (`~` and 11
 * random base64url characters, new on every write) that reads strip: a compare-and-set compares
 * that tag, not the whole record. Records in another layout (express-session's, written by the
 * `compat: "express-session"` mode for connect-redis to read) are stored exactly as given.
 *
 * Owner index (`owners`, for the manager's `owner` option): one sorted set per owner at
 * `<prefix>owner:<owner>` (`{`, `}` and `%` in the owner percent-encoded), members the session ids,
 * scores their deadlines in Unix ms (absolute; of activity under `maxSessionsPerOwner`'s
 * `"evict-least-active"`, re-scored by `owners.touch`). It expires with its last session and drops
 * stale members whenever it is written or read.
 *
 * No command touches two keys, so every operation works on a Cluster.
 *
 * Every operation is bounded by `timeout` and fails at once while the client is disconnected (after
 * it first connected): commands are never left to pile up in the client's offline queue.
 *
 * @example
 * import { RedisStore, createRedisClient } from "shared-session/redis";
 * const store = new RedisStore({ client: createRedisClient(process.env.REDIS_URL!) });
 */
export class RedisStore<C extends RedisClient | NodeRedisClient | NodeRedisCluster = RedisClient> implements SessionStore {
  readonly name = "RedisStore";
  readonly capabilities: StoreCapabilities = CAPABILITIES;
  readonly client: C;
  /** Prefix of session keys as the store applies it (without the client's `keyPrefix`). */
  readonly prefix: string;
  /** Seconds an operation may take (the `timeout` option). */
  readonly timeout: number;
  /** `COUNT` hint of each `SCAN` step (the `scanCount` option). */
  readonly scanCount: number;

  readonly #timeoutMs: number;
  readonly #isCluster: boolean;
  /** The commands the store sends: the ioredis client itself, or node-redis adapted to its shape. */
  readonly #commands: RedisCommands;
  /** An ioredis Cluster, whose unfollowed redirections the store resends (see followRedirects); else `null`. */
  readonly #redirects: Cluster | null;
  /** Resolves when the client first becomes ready; `null` once it has been ready. */
  #firstReady: Promise<void> | null = null;
  #readyListener: (() => void) | null = null;
  /** Remembers the client's last error (the root cause of "not connected"); reports errors to the manager's logger when the app attached no listener. */
  readonly #clientErrors: ClientErrorLog;

  constructor(options: RedisStoreOptions<C>) {
    if (typeof options !== "object" || options === null) throw new SessionConfigError("RedisStore: options are required: { client }");
    const client = options.client as RedisClient | NodeRedisClient | NodeRedisCluster | undefined;
    let commands: RedisCommands;
    if (isNodeRedis(client)) commands = nodeRedisCommands(client);
    else if (typeof client !== "object" || client === null || typeof client.getex !== "function" || typeof client.status !== "string") {
      throw new SessionConfigError("RedisStore: client must be an ioredis Redis or Cluster instance (ioredis 5.11+ or 6; see createRedisClient) or a node-redis client or Cluster (redis 4.6+)");
    } else commands = client as RedisCommands;
    const prefix = options.prefix ?? "sess:";
    if (typeof prefix !== "string") throw new SessionConfigError(`RedisStore: prefix must be a string, got ${typeof prefix}`);
    // With no prefix at all, listing would return every string key of the database as a session id.
    if (prefix === "" && clientKeyPrefix(commands) === "") {
      throw new SessionConfigError('RedisStore: prefix must not be empty (listing would return every string key of the database as a session id); use e.g. "sess:"');
    }
    const timeout = options.timeout ?? 1;
    if (typeof timeout !== "number" || !Number.isFinite(timeout) || !(timeout > 0)) {
      throw new SessionConfigError(`RedisStore: timeout must be a number of seconds > 0, got ${String(timeout)}`);
    }
    const scanCount = options.scanCount ?? 1000;
    if (!Number.isInteger(scanCount) || scanCount < 1) throw new SessionConfigError(`RedisStore: scanCount must be a whole number >= 1, got ${String(scanCount)}`);
    this.client = client as C;
    this.#commands = commands;
    this.prefix = prefix;
    this.timeout = timeout;
    this.scanCount = scanCount;
    this.#timeoutMs = Math.ceil(timeout * 1000);
    this.#isCluster = commands.isCluster;
    this.#redirects = this.#isCluster && (commands as unknown) === client ? (client as Cluster) : null;
    if (commands.status !== "ready") {
      this.#firstReady = new Promise<void>((resolve) => {
        this.#readyListener = () => {
          this.#firstReady = null;
          this.#readyListener = null;
          resolve();
        };
        commands.once("ready", this.#readyListener);
      });
    }
    this.#clientErrors = new ClientErrorLog(commands, this.name);
  }

  /**
   * Resolves once Redis answers `PING` (every master of a Cluster; the current master under Sentinel),
   * connecting a lazy client and waiting for one still connecting; rejects with a `RedisStoreError`
   * (`ERR_REDIS_NOT_CONNECTED`) naming the client's last error when it cannot within `timeout` seconds.
   * The session manager's `ready()` and `isReady()` call it.
   */
  async ready(timeout: number): Promise<void> {
    try {
      await whenRedisReady(this.#commands, Math.ceil(timeout * 1000));
    } catch (err) {
      throw new RedisStoreError("ERR_REDIS_NOT_CONNECTED", "ready", `RedisStore: ${messageOf(err)}`, { cause: err });
    }
  }

  /**
   * Called by the session manager with its `logger`: client errors then go there, one line per outage,
   * when the client had no `error` listener of the app's when the store was made.
   */
  attachLogger(logger: SessionLogger): void {
    this.#clientErrors.attach(logger);
  }

  /**
   * Owner index: `add`, `addCapped`, `touch` and `entries` are one Lua script each on the owner's sorted
   * set, `remove` one `ZREM`. The deadlines it compares with "now" come from the app's clock, as the core computes them.
   */
  readonly owners: OwnerIndex = {
    add: async (owner, id, expiresAt) => {
      const key = this.#ownerKey("owners.add", owner);
      checkId("owners.add", id);
      if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) {
        throw new RedisStoreError("ERR_REDIS_ARGUMENT", "owners.add", `RedisStore: owners.add needs a deadline in whole Unix milliseconds, got ${String(expiresAt)}`);
      }
      await this.#script("owners.add", OWNER_ADD, key, id, expiresAt, Date.now());
    },
    remove: async (owner, id) => {
      const key = this.#ownerKey("owners.remove", owner);
      await this.#run("owners.remove", () => this.#commands.zrem(key, id));
    },
    entries: async (owner) => {
      const key = this.#ownerKey("owners.entries", owner);
      const reply = await this.#script("owners.entries", OWNER_ENTRIES, key, Date.now());
      if (!Array.isArray(reply) || reply.length % 2 !== 0) {
        throw new RedisStoreError("ERR_REDIS_COMMAND", "owners.entries", "RedisStore: owners.entries got an unexpected reply");
      }
      const entries: OwnerEntry[] = [];
      for (let i = 0; i < reply.length; i += 2) entries.push({ id: String(reply[i]), expiresAt: Number(reply[i + 1]) });
      return entries;
    },
    addCapped: async (owner, id, expiresAt, limit, policy) => {
      const key = this.#ownerKey("owners.add", owner);
      checkId("owners.add", id);
      if (!Number.isSafeInteger(expiresAt) || expiresAt < 0 || !Number.isSafeInteger(limit) || limit < 1) {
        throw new RedisStoreError("ERR_REDIS_ARGUMENT", "owners.add", "RedisStore: owners.add needs a deadline in whole Unix milliseconds and a limit >= 1");
      }
      // One script on the owner's sorted set: atomic, so parallel logins cannot overshoot the limit.
      const reply = await this.#script("owners.add", OWNER_ADD_CAPPED, key, id, expiresAt, Date.now(), limit, policy);
      if (!Array.isArray(reply) || reply.length === 0) throw new RedisStoreError("ERR_REDIS_COMMAND", "owners.add", "RedisStore: owners.add got an unexpected reply");
      return { added: Number(reply[0]) === 1, evicted: reply.slice(1).map(String) };
    },
    touch: async (owner, id, expiresAt) => {
      const key = this.#ownerKey("owners.touch", owner);
      checkId("owners.touch", id);
      if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) {
        throw new RedisStoreError("ERR_REDIS_ARGUMENT", "owners.touch", `RedisStore: owners.touch needs a deadline in whole Unix milliseconds, got ${String(expiresAt)}`);
      }
      // One script (ZADD XX GT, and the key's expiry when this member became the latest); the manager sends it with the record's write.
      await this.#script("owners.touch", OWNER_TOUCH, key, id, expiresAt);
    },
  };

  /** The session key of `id`. Ids in the owner index's namespace are refused: they would name an index key. */
  #key(operation: string, id: string): string {
    checkId(operation, id);
    return this.prefix + id;
  }

  /**
   * Key of an owner's index. `{` and `}` are percent-encoded (with `%` itself) so that an owner id
   * cannot pick its Cluster slot through a hash tag; distinct owners still get distinct keys.
   */
  #ownerKey(operation: string, owner: string): string {
    if (typeof owner !== "string" || owner.length === 0 || owner.length > MAX_OWNER_LENGTH) {
      throw new RedisStoreError("ERR_REDIS_ARGUMENT", operation, `RedisStore: ${operation} needs an owner id of 1 to ${MAX_OWNER_LENGTH} characters`);
    }
    return this.prefix + OWNER_NAMESPACE + owner.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  }

  /** The record of `id` (its version tag stripped), or `null`; with `ttl`, one `GETEX` that also resets the TTL. */
  async get(id: string, ttl?: number): Promise<string | null> {
    const value = await this.#read(id, ttl);
    return value === null ? null : untagged(value);
  }

  /**
   * {@link get} with the record's version: the tag stored in front of it (see `compareAndSet`), none
   * for a record stored without one. The session manager reads through this and hands the version
   * back to {@link compareAndSet}.
   */
  async getVersioned(id: string, ttl?: number): Promise<VersionedRecord | null> {
    const value = await this.#read(id, ttl);
    if (value === null) return null;
    const version = tagOf(value);
    return version === undefined ? { record: value } : { record: value.slice(TAG_LENGTH), version };
  }

  // Not `async`: the read runs on every request, and an async wrapper is one more promise around #run's.
  #read(id: string, ttl: number | undefined): Promise<string | null> {
    if (ttl === undefined) return this.#run("get", () => this.#commands.get(this.#key("get", id)));
    try {
      checkTtl("get", ttl);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#run("get", () => this.#commands.getex(this.#key("get", id), "EX", ttl));
  }

  async create(id: string, record: string, ttl: number): Promise<boolean> {
    checkTtl("create", ttl);
    const value = tagged(record);
    return (await this.#run("create", () => this.#commands.set(this.#key("create", id), value, "EX", ttl, "NX"))) === "OK";
  }

  async update(id: string, record: string, ttl: number): Promise<boolean> {
    checkTtl("update", ttl);
    const value = tagged(record);
    return (await this.#run("update", () => this.#commands.set(this.#key("update", id), value, "EX", ttl, "XX"))) === "OK";
  }

  async touch(id: string, ttl: number): Promise<boolean> {
    checkTtl("touch", ttl);
    return (await this.#run("touch", () => this.#commands.expire(this.#key("touch", id), ttl))) === 1;
  }

  async destroy(id: string): Promise<void> {
    await this.#run("destroy", () => this.#commands.del(this.#key("destroy", id)));
  }

  /** Seconds of TTL Redis holds for `id` (`TTL key`), or `null` when the key is absent or has no expiry. */
  async ttl(id: string): Promise<number | null> {
    const seconds = await this.#run("ttl", () => this.#commands.ttl(this.#key("ttl", id)));
    return seconds >= 0 ? seconds : null;
  }

  /**
   * Atomically replace the record of `id` with `record` if it is exactly `expected`: one Lua script
   * (`EVALSHA`, falling back to `EVAL` once per server when the script is not cached yet).
   *
   * With the `version` {@link getVersioned} returned with `expected`, the script compares only the
   * 12-byte version tag stored in front of the record, so a write sends the new record
   * and the tag, as a plain `SET` would, and Redis compares 12 bytes. Without a version (or for a
   * record stored untagged), it sends `expected` and compares whole records. A stale version whose
   * record still equals `expected` (rewritten with the same bytes) is retried under the current tag.
   */
  async compareAndSet(id: string, expected: string, record: string, ttl: number, version?: string): Promise<CompareAndSetResult> {
    checkTtl("compareAndSet", ttl);
    const key = this.#key("compareAndSet", id);
    const tag = isTaggable(record) ? newTag() : undefined;
    const value = tag === undefined ? record : tag + record;
    let expectedTag = isTag(version) ? version : undefined;
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const reply =
        expectedTag === undefined
          ? await this.#script("compareAndSet", COMPARE_AND_SET, key, expected, value, ttl)
          : await this.#script("compareAndSet", COMPARE_VERSION_AND_SET, key, expectedTag, value, ttl);
      if (reply === 1) return tag === undefined ? { status: "written" } : { status: "written", version: tag };
      if (reply === 0 || reply === null) return { status: "missing" };
      const current = typeof reply === "string" ? reply : Buffer.isBuffer(reply) ? reply.toString("utf8") : undefined;
      if (current === undefined) {
        throw new RedisStoreError("ERR_REDIS_COMMAND", "compareAndSet", `RedisStore: compareAndSet got an unexpected reply of type ${Array.isArray(reply) ? "array" : typeof reply}`);
      }
      const currentTag = tagOf(current);
      const currentRecord = currentTag === undefined ? current : current.slice(TAG_LENGTH);
      // Compared by tag, but the same bytes were written again since: still `expected`, so try again
      // under the current tag (or by record, when it is stored untagged).
      if (expectedTag !== undefined && currentRecord === expected) {
        expectedTag = currentTag;
        continue;
      }
      return currentTag === undefined ? { status: "conflict", current: currentRecord } : { status: "conflict", current: currentRecord, version: currentTag };
    }
    return { status: "conflict", current: expected };
  }

  /**
   * Every session id under the prefix: `SCAN` (never `KEYS`) with the prefix's glob characters escaped,
   * on every master of a Cluster. Each `SCAN` step is bounded by `timeout`. As with `SCAN`, an id may be
   * yielded twice when the server resizes its table meanwhile, and sessions created during the listing
   * may or may not appear.
   */
  async *list(): AsyncIterable<string> {
    // ioredis prefixes the keys of commands with the client's keyPrefix, but neither SCAN's pattern
    // nor the keys SCAN returns: both carry the full key.
    const full = clientKeyPrefix(this.#commands) + this.prefix;
    const pattern = `${escapeGlob(full)}*`;
    // A Cluster knows its masters once connected.
    if (this.#isCluster) await this.#run("list", async () => undefined);
    const nodes: RedisNodeCommands[] = this.#isCluster ? (this.#commands as RedisClusterCommands).nodes("master") : [this.#commands as unknown as RedisNodeCommands];
    for (const node of nodes) {
      let cursor = "0";
      do {
        const [next, keys] = await this.#run("list", () => node.scan(cursor, "MATCH", pattern, "COUNT", this.scanCount, "TYPE", "string"), node);
        cursor = next;
        for (const key of keys) {
          // TYPE string already leaves out the owner indexes (sorted sets); the namespace check is the second lock.
          if (key.startsWith(full) && !key.startsWith(OWNER_NAMESPACE, full.length)) yield key.slice(full.length);
        }
      } while (cursor !== "0");
    }
  }

  /**
   * Run a Lua script on one key: `EVALSHA`, falling back to `EVAL` (which caches it) when the server
   * does not have it yet (first use, a restart, `SCRIPT FLUSH`).
   */
  async #script(operation: string, lua: LuaScript, key: string, ...args: (string | number)[]): Promise<unknown> {
    return this.#run(operation, async (direct) => {
      try {
        return await this.#commands.evalsha(lua.sha, 1, key, ...args);
      } catch (err) {
        if (!messageOf(err).startsWith("NOSCRIPT")) throw err;
        const load = () => this.#commands.eval(lua.source, 1, key, ...args);
        // Resent after a Cluster redirection: the fallback must bypass the auto-pipeline too.
        return direct && this.#redirects !== null ? unpipelined(this.#redirects, load) : load();
      }
    });
  }

  /** Detach from the client. The client stays open: it is yours to `quit()`. */
  async close(): Promise<void> {
    if (this.#readyListener !== null) this.#commands.off("ready", this.#readyListener);
    this.#readyListener = null;
    this.#clientErrors.detach();
  }

  /**
   * Run one operation bounded by `timeout`. Sends nothing while the client is disconnected after it
   * was once ready (fail fast, nothing queued); before the first connection, waits for it within the
   * same time budget.
   */
  #run<T>(operation: string, send: (direct?: boolean) => Promise<T>, target: RedisCommands | RedisNodeCommands = this.#commands): Promise<T> {
    // On an ioredis Cluster, a redirection the auto-pipeline did not follow is resent (see followRedirects).
    const run = this.#redirects !== null && target === this.#commands ? () => followRedirects(this.#redirects!, send) : send;
    // Connected (every request of a healthy app): one promise and one timer, nothing else.
    if (target !== this.#commands || this.#commands.status === "ready") return this.#bounded(operation, run);
    return this.#runWhenConnected(operation, run);
  }

  /** `send()` bounded by `timeout`; a late answer or rejection after the timeout is dropped. */
  #bounded<T>(operation: string, send: () => Promise<T>): Promise<T> {
    return bounded(
      send,
      this.#timeoutMs,
      () => new RedisStoreError("ERR_REDIS_TIMEOUT", operation, `RedisStore: ${operation} did not answer within ${this.timeout}s`),
      (err) => toStoreError(operation, err, this.#clientErrors.lastError),
      true,
    );
  }

  /** Not ready: wait for the first connection (within the same budget), or fail at once. */
  async #runWhenConnected<T>(operation: string, send: () => Promise<T>, target: RedisCommands | RedisNodeCommands = this.#commands): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        // Still not connected: the client's last error (ECONNREFUSED, WRONGPASS…) says why.
        () =>
          reject(
            new RedisStoreError("ERR_REDIS_TIMEOUT", operation, `RedisStore: ${operation} did not answer within ${this.timeout}s`, {
              cause: this.#commands.status === "ready" ? undefined : (this.#clientErrors.lastError ?? undefined),
            }),
          ),
        this.#timeoutMs,
      );
      timer.unref?.();
    });
    try {
      if (target === this.#commands) await Promise.race([this.#connected(operation), timedOut]);
      const pending = send();
      pending.catch(noop); // a late rejection after the timeout must not go unhandled
      return await Promise.race([pending, timedOut]);
    } catch (err) {
      throw toStoreError(operation, err, this.#clientErrors.lastError);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves when commands can be sent now; rejects at once when the client is down or closed. */
  async #connected(operation: string): Promise<void> {
    const status = this.#commands.status;
    if (status === "ready") return;
    if (this.#firstReady !== null && STARTING.has(status)) {
      // lazyConnect: nothing connects until asked.
      if (status === "wait") this.#commands.connect().catch(noop);
      return this.#firstReady;
    }
    const why = CLOSED.has(status) ? "the Redis client was closed" : "the Redis client is not connected (it is reconnecting)";
    throw new RedisStoreError("ERR_REDIS_NOT_CONNECTED", operation, `RedisStore: ${operation} failed at once: ${why}, status "${status}"; nothing was sent`, {
      cause: this.#clientErrors.lastError ?? undefined,
    });
  }
}

/** The value to store for `record`: tagged with a fresh version when it is in shared-session's own format. */
function tagged(record: string): string {
  return isTaggable(record) ? newTag() + record : record;
}

function checkTtl(operation: string, ttl: number): void {
  if (!Number.isInteger(ttl) || ttl < 1) {
    throw new RedisStoreError("ERR_REDIS_ARGUMENT", operation, `RedisStore: ${operation} needs a TTL in whole seconds >= 1, got ${String(ttl)}`);
  }
}

/** Session ids in the owner index's namespace would name an index key: refused before anything is sent. */
function checkId(operation: string, id: string): void {
  if (id.startsWith(OWNER_NAMESPACE)) {
    throw new RedisStoreError("ERR_REDIS_ARGUMENT", operation, `RedisStore: session ids may not start with "${OWNER_NAMESPACE}" (owner indexes live there)`);
  }
}

function clientKeyPrefix(client: RedisCommands): string {
  const keyPrefix: unknown = client.options.keyPrefix;
  if (keyPrefix === undefined || keyPrefix === null) return "";
  return Buffer.isBuffer(keyPrefix) ? keyPrefix.toString("utf8") : String(keyPrefix);
}

/**
 * The store's error for a failed command. `lastError` is the client's last `error` event: when the
 * command failed because the connection is down or unauthenticated, it becomes the root of the chain.
 */
/** Error codes Redis answers with that say what went wrong, wherever they appear in the message. */
const REDIS_ERROR_CODE =
  /\b(NOPERM|READONLY|OOM|NOREPLICAS|WRONGTYPE|NOSCRIPT|NOAUTH|WRONGPASS|BUSY|LOADING|MASTERDOWN|CLUSTERDOWN|CROSSSLOT|TRYAGAIN|MISCONF|EXECABORT)\b/;

function toStoreError(operation: string, err: unknown, lastError: Error | null = null): RedisStoreError {
  if (err instanceof RedisStoreError) return err;
  // ioredis errors carry the command (`command.args`: the key, hence the session id, and for a
  // script the records): the cause is a scrubbed copy, and the message its first line.
  const cause = scrubError(err);
  const message = cause.message;
  if (lastError !== null && cause.cause === undefined && /^NOAUTH|enableOfflineQueue|Connection is closed|Stream isn't writeable|The client is (offline|closed)|Socket closed unexpectedly/i.test(message)) {
    Object.defineProperty(cause, "cause", { value: lastError, writable: true, configurable: true });
  }
  // Each layer says its part once: the driver's message is the cause's; ours names the operation and,
  // for a server error, its code word (READONLY, OOM, NOPERM…).
  if (/unknown command/i.test(message) && /getex/i.test(message)) {
    return new RedisStoreError("ERR_REDIS_VERSION", operation, "RedisStore needs Redis >= 6.2 (GETEX); the server does not know the command", { cause });
  }
  if (/enableOfflineQueue|Connection is closed|Stream isn't writeable|The client is (offline|closed)|Socket closed unexpectedly/i.test(message)) {
    return new RedisStoreError("ERR_REDIS_NOT_CONNECTED", operation, `RedisStore: ${operation} failed: the Redis connection is down`, { cause });
  }
  if (/command timed out/i.test(message)) {
    return new RedisStoreError("ERR_REDIS_TIMEOUT", operation, `RedisStore: ${operation} failed: the client's commandTimeout passed`, { cause });
  }
  // A script's error wraps the command's ("ERR Error running script …: NOPERM …"): name the inner code.
  const code = REDIS_ERROR_CODE.exec(message)?.[1] ?? /^([A-Z][A-Z_]{1,30})\b/.exec(message)?.[1];
  return new RedisStoreError("ERR_REDIS_COMMAND", operation, `RedisStore: ${operation} failed${code === undefined ? "" : `: ${code}`}`, { cause });
}
