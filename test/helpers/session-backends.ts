/**
 * Backing stores for the binding tests, measured where they live: the MemoryStore through the
 * counting wrapper, Redis through the server's own `INFO commandstats` (on a server no other test
 * file uses) and `TTL`/`EXISTS` on the keys.
 */
import { Redis } from "ioredis";
import { RedisStore } from "../../adapters/redis.js";
import { MemoryStore } from "../../src/testing/index.js";
import { startRedis, uniquePrefix, type RedisHandle } from "../services/index.js";
import { InstrumentedStore } from "./instrumented-store.js";

/** Store operations the backing service performed, split into reads and everything else. */
export interface OpCounts {
  reads: number;
  writes: number;
  total: number;
}

export interface Backend {
  readonly name: "memory" | "redis";
  /**
   * A new store over the same data, as another process would open it: its own wrapper (and, for
   * Redis, its own client). Each one starts without faults.
   */
  openStore(): InstrumentedStore;
  /** Snapshot to measure from. */
  mark(): Promise<OpCounts>;
  /** Operations performed by the backing service since `mark`. */
  since(mark: OpCounts): Promise<OpCounts>;
  /** The key the store holds the record of session `id` under (a keyed hash of it). */
  readonly keyOf: (id: string) => string;
  /** The service holds a record for `id`. */
  has(id: string): Promise<boolean>;
  /** Seconds left on `id` as the service holds them, or `null` when absent. */
  ttl(id: string): Promise<number | null>;
  /** Forget faults and delays on every store opened. */
  reset(): void;
  close(): Promise<void>;
}

/** `keyOf`: the store key of an id for the apps' secrets (see {@link storeKeysFor}). */
export function memoryBackend(keyOf: (id: string) => string): Backend {
  const inner = new MemoryStore({ quiet: true });
  const stores: InstrumentedStore[] = [];
  const counts = (): OpCounts => {
    const calls = stores.flatMap((s) => s.calls).filter((c) => !c.faulted);
    const reads = calls.filter((c) => c.op === "get").length;
    return { reads, writes: calls.length - reads, total: calls.length };
  };
  return {
    name: "memory",
    keyOf,
    openStore() {
      const store = new InstrumentedStore(inner);
      stores.push(store);
      return store;
    },
    async mark() {
      return counts();
    },
    async since(mark) {
      const now = counts();
      return { reads: now.reads - mark.reads, writes: now.writes - mark.writes, total: now.total - mark.total };
    },
    async has(id) {
      return inner.ttlOf(keyOf(id)) !== null;
    },
    async ttl(id) {
      return inner.ttlOf(keyOf(id));
    },
    reset() {
      for (const store of stores) store.reset();
    },
    async close() {
      await inner.close();
    },
  };
}

const READ_COMMANDS = new Set(["get", "getex"]);
/** Commands of our own measuring and of clients connecting, not of the store. */
const IGNORED = new Set(["info", "client|setinfo", "client|setname", "hello", "select", "ping", "exists", "ttl", "command", "command|docs"]);

async function commandCounts(admin: Redis): Promise<OpCounts> {
  const info = await admin.info("commandstats");
  const counts: OpCounts = { reads: 0, writes: 0, total: 0 };
  for (const line of info.split("\r\n")) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (match === null || IGNORED.has(match[1]!)) continue;
    const calls = Number(match[2]);
    if (READ_COMMANDS.has(match[1]!)) counts.reads += calls;
    else counts.writes += calls;
    counts.total += calls;
  }
  return counts;
}

/**
 * A Redis server owned by this test file (from the test-services module), so that the server's
 * command counts are this file's alone; keys under a unique prefix all the same.
 */
export async function redisBackend(keyOf: (id: string) => string): Promise<Backend & { server: RedisHandle; prefix: string }> {
  const server = await startRedis();
  const prefix = uniquePrefix("framework-bindings");
  const admin = new Redis(server.url, { lazyConnect: true });
  admin.on("error", () => undefined);
  await admin.connect();
  const clients: Redis[] = [];
  const stores: InstrumentedStore[] = [];
  return {
    name: "redis",
    keyOf,
    server,
    prefix,
    openStore() {
      const client = new Redis(server.url, { enableOfflineQueue: true, maxRetriesPerRequest: 1, commandTimeout: 3000 });
      client.on("error", () => undefined);
      clients.push(client);
      const store = new InstrumentedStore(new RedisStore({ client, prefix }));
      stores.push(store);
      return store;
    },
    mark: () => commandCounts(admin),
    async since(mark) {
      const now = await commandCounts(admin);
      return { reads: now.reads - mark.reads, writes: now.writes - mark.writes, total: now.total - mark.total };
    },
    async has(id) {
      return (await admin.exists(prefix + keyOf(id))) === 1;
    },
    async ttl(id) {
      const ttl = await admin.ttl(prefix + keyOf(id));
      return ttl < 0 ? null : ttl;
    },
    reset() {
      for (const store of stores) store.reset();
    },
    async close() {
      for (const client of clients) client.disconnect();
      admin.disconnect();
      await server.close();
    },
  };
}
