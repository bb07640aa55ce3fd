import type { Cluster, Redis } from "ioredis";
import { SessionConfigError } from "../src/index.js";
import type { CompareAndSetResult, OwnerIndex, SessionLogger, SessionStore, StoreCapabilities, VersionedRecord } from "../src/index.js";
import { isNodeRedis, nodeRedisCommands, type NodeRedisClient, type NodeRedisCluster, type RedisClusterCommands, type RedisCommands, type RedisNodeCommands } from "./redis/commands.js";
import { checkTtl, messageOf, RedisStoreError } from "./redis/errors.js";
import { escapeGlob } from "./redis/glob.js";
import { whenRedisReady } from "./redis/health.js";
import { COMPARE_AND_SET, COMPARE_VERSION_AND_SET, TAG_LENGTH } from "./redis/lua.js";
import { checkSessionId, OWNER_NAMESPACE, redisOwnerIndex } from "./redis/owners.js";
import { CommandRunner } from "./redis/runner.js";
import { isTag, isTaggable, newTag, tagOf, untagged } from "./redis/version.js";

export { createRedisClient } from "./redis/client.js";
export type { RedisClusterClientOptions, RedisServerClientOptions } from "./redis/client.js";
export type { NodeRedisClient, NodeRedisCluster } from "./redis/commands.js";
export { RedisStoreError, type RedisStoreErrorCode } from "./redis/errors.js";

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

const CAPABILITIES: StoreCapabilities = Object.freeze({ refreshOnGet: true, list: true, compareAndSet: true, ownerIndex: true });
/**
 * Rounds of compare-and-set when the version is stale but the record still equals `expected`
 * (someone rewrote the same bytes). Then the call reports a conflict and the manager's merge retries.
 */
const CAS_ROUNDS = 10;

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
  /**
   * Owner index: `add`, `addCapped`, `touch` and `entries` are one Lua script each on the owner's sorted
   * set, `remove` one `ZREM`. The deadlines it compares with "now" come from the app's clock, as the core computes them.
   */
  readonly owners: OwnerIndex;

  readonly #isCluster: boolean;
  /** The commands the store sends: the ioredis client itself, or node-redis adapted to its shape. */
  readonly #commands: RedisCommands;
  /** Sends them: bounded by `timeout`, failing fast while the client is down. */
  readonly #runner: CommandRunner;

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
    this.#isCluster = commands.isCluster;
    // An ioredis Cluster, whose unfollowed redirections the runner resends (see followRedirects).
    const redirectingCluster = this.#isCluster && (commands as unknown) === client ? (client as Cluster) : null;
    this.#runner = new CommandRunner(commands, timeout, redirectingCluster, this.name);
    this.owners = redisOwnerIndex(prefix, commands, this.#runner);
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
    this.#runner.clientErrors.attach(logger);
  }

  /** The session key of `id`. Ids in the owner index's namespace are refused: they would name an index key. */
  #key(operation: string, id: string): string {
    checkSessionId(operation, id);
    return this.prefix + id;
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

  // Not `async`: the read runs on every request, and an async wrapper is one more promise around the runner's.
  #read(id: string, ttl: number | undefined): Promise<string | null> {
    if (ttl === undefined) return this.#runner.run("get", () => this.#commands.get(this.#key("get", id)));
    try {
      checkTtl("get", ttl);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#runner.run("get", () => this.#commands.getex(this.#key("get", id), "EX", ttl));
  }

  async create(id: string, record: string, ttl: number): Promise<boolean> {
    checkTtl("create", ttl);
    const value = taggedValue(record);
    return (await this.#runner.run("create", () => this.#commands.set(this.#key("create", id), value, "EX", ttl, "NX"))) === "OK";
  }

  async update(id: string, record: string, ttl: number): Promise<boolean> {
    checkTtl("update", ttl);
    const value = taggedValue(record);
    return (await this.#runner.run("update", () => this.#commands.set(this.#key("update", id), value, "EX", ttl, "XX"))) === "OK";
  }

  async touch(id: string, ttl: number): Promise<boolean> {
    checkTtl("touch", ttl);
    return (await this.#runner.run("touch", () => this.#commands.expire(this.#key("touch", id), ttl))) === 1;
  }

  async destroy(id: string): Promise<void> {
    await this.#runner.run("destroy", () => this.#commands.del(this.#key("destroy", id)));
  }

  /** Seconds of TTL Redis holds for `id` (`TTL key`), or `null` when the key is absent or has no expiry. */
  async ttl(id: string): Promise<number | null> {
    const seconds = await this.#runner.run("ttl", () => this.#commands.ttl(this.#key("ttl", id)));
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
          ? await this.#runner.script("compareAndSet", COMPARE_AND_SET, key, expected, value, ttl)
          : await this.#runner.script("compareAndSet", COMPARE_VERSION_AND_SET, key, expectedTag, value, ttl);
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
    const fullPrefix = clientKeyPrefix(this.#commands) + this.prefix;
    const pattern = `${escapeGlob(fullPrefix)}*`;
    // A Cluster knows its masters once connected.
    if (this.#isCluster) await this.#runner.run("list", async () => undefined);
    const nodes: RedisNodeCommands[] = this.#isCluster ? (this.#commands as RedisClusterCommands).nodes("master") : [this.#commands as unknown as RedisNodeCommands];
    for (const node of nodes) {
      let cursor = "0";
      do {
        const [next, keys] = await this.#runner.run("list", () => node.scan(cursor, "MATCH", pattern, "COUNT", this.scanCount, "TYPE", "string"), node);
        cursor = next;
        for (const key of keys) {
          // TYPE string already leaves out the owner indexes (sorted sets); the namespace check is the second lock.
          if (key.startsWith(fullPrefix) && !key.startsWith(OWNER_NAMESPACE, fullPrefix.length)) yield key.slice(fullPrefix.length);
        }
      } while (cursor !== "0");
    }
  }

  /** Detach from the client. The client stays open: it is yours to `quit()`. */
  async close(): Promise<void> {
    this.#runner.detach();
  }
}

/** The value to store for `record`: tagged with a fresh version when it is in shared-session's own format. */
function taggedValue(record: string): string {
  return isTaggable(record) ? newTag() + record : record;
}

function clientKeyPrefix(client: RedisCommands): string {
  const keyPrefix: unknown = client.options.keyPrefix;
  if (keyPrefix === undefined || keyPrefix === null) return "";
  return Buffer.isBuffer(keyPrefix) ? keyPrefix.toString("utf8") : String(keyPrefix);
}
