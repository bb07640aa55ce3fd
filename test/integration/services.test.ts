/**
 * The test-services module itself: every provider starts what it promises, real clients can
 * use it, and the fault controls do what they say.
 */
import net from "node:net";
import { Cluster, Redis } from "ioredis";
import memjs from "memjs";
import { beforeAll, describe, expect, test } from "vitest";
import { dockerProblem } from "../services/docker.js";
import {
  services,
  startMemcached,
  startRedis,
  startRedisCluster,
  startRedisSentinel,
  uniquePrefix,
  type LauncherName,
  type ServerAddress,
} from "../services/index.js";
import { sleep } from "../services/probe.js";
import { dockerRequired, forcedProvider, parseHostPortList, servicesFromEnv } from "../services/resolve.js";

const forced = forcedProvider();
/** Why Docker cannot serve here, when that skips its provider's tests (only where Docker is not required). */
const dockerMissing = forced === undefined && !dockerRequired() ? await dockerProblem() : undefined;

// ---------------------------------------------------------------------------------------------
// Helpers: raw protocol access, so that what a test sees does not depend on a client's retries.
// ---------------------------------------------------------------------------------------------

type Outcome = { kind: "reply"; text: string } | { kind: "refused" } | { kind: "timeout" } | { kind: "error"; message: string };

/** Sends `request` on a fresh connection and collects the reply up to `terminator`. */
function rawRequest(address: ServerAddress, request: string, terminator: RegExp, timeoutMs = 1_000): Promise<Outcome> {
  return new Promise((resolve) => {
    let text = "";
    const socket = net.connect(address);
    const finish = (outcome: Outcome): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: "timeout" }), timeoutMs);
    socket.setEncoding("utf8");
    socket.once("connect", () => socket.write(request));
    socket.on("data", (chunk: string) => {
      text += chunk;
      if (terminator.test(text)) finish({ kind: "reply", text });
    });
    socket.once("error", (error: NodeJS.ErrnoException) =>
      finish(error.code === "ECONNREFUSED" ? { kind: "refused" } : { kind: "error", message: error.message }),
    );
  });
}

const redisPing = (address: ServerAddress, timeoutMs?: number): Promise<Outcome> => rawRequest(address, "PING\r\n", /\r\n/, timeoutMs);
const memcachedVersion = (address: ServerAddress, timeoutMs?: number): Promise<Outcome> =>
  rawRequest(address, "version\r\n", /\r\n/, timeoutMs);

/** `STAT name value` lines of a memcached `stats` reply. */
async function memcachedStats(address: ServerAddress): Promise<Map<string, string>> {
  const outcome = await rawRequest(address, "stats\r\n", /END\r\n/);
  if (outcome.kind !== "reply") throw new Error(`stats on ${address.port}: ${outcome.kind}`);
  const stats = new Map<string, string>();
  for (const line of outcome.text.split("\r\n")) {
    const [marker, name, value] = line.split(" ");
    if (marker === "STAT" && name !== undefined && value !== undefined) stats.set(name, value);
  }
  return stats;
}

/** A client that reports failures at once instead of queueing and retrying. */
function failFastRedis(address: ServerAddress): Redis {
  const client = new Redis({
    host: address.host,
    port: address.port,
    lazyConnect: true,
    commandTimeout: 500,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on("error", () => undefined);
  return client;
}

/** Runs `use` on a fresh fail-fast connection to `address`. */
async function withDirect<T>(address: ServerAddress, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = failFastRedis(address);
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

async function waitUntil(condition: () => Promise<boolean>, timeoutMs: number, message: string): Promise<number> {
  const started = Date.now();
  while (!(await condition().catch(() => false))) {
    if (Date.now() - started > timeoutMs) throw new Error(`${message} (after ${timeoutMs} ms)`);
    await sleep(100);
  }
  return Date.now() - started;
}

/** Which node of `nodes` serves each key, by asking each node directly (no cluster client). */
async function keysPerClusterMaster(nodes: ServerAddress[], keys: string[]): Promise<Map<number, number>> {
  const perPort = new Map<number, number>();
  for (const node of nodes) {
    const direct = failFastRedis(node);
    await direct.connect();
    const role = String(await direct.call("ROLE")).split(",")[0];
    if (role === "master") {
      let held = 0;
      for (const key of keys) {
        // A master answers for the slots it owns and replies MOVED for the others.
        const value = await direct.get(key).catch(() => undefined);
        if (value !== undefined && value !== null) held += 1;
      }
      perPort.set(node.port, held);
    }
    direct.disconnect();
  }
  return perPort;
}

// ---------------------------------------------------------------------------------------------

describe("uniquePrefix", () => {
  test("is distinct on every call and keeps keys safe for Redis and Memcached", () => {
    const prefixes = new Set(Array.from({ length: 100 }, () => uniquePrefix("store conformance/β")));
    expect(prefixes.size).toBe(100);
    for (const prefix of prefixes) expect(prefix).toMatch(/^test:store-conformance-:[0-9a-z]+:$/);
  });
});

describe("environment provider", () => {
  test("reads every variable", () => {
    const found = servicesFromEnv({
      REDIS_URL: "redis://:secret@10.0.0.5:6380/2",
      REDIS_CLUSTER_NODES: "10.0.0.6:7000, 10.0.0.7:7001",
      REDIS_SENTINELS: "s1:26379,[::1]:26380",
      REDIS_SENTINEL_NAME: "sessions",
      MEMCACHED_SERVERS: "m1:11211,m2:11212",
    });
    expect(found).toEqual({
      redis: { host: "10.0.0.5", port: 6380, url: "redis://:secret@10.0.0.5:6380/2" },
      redisCluster: { nodes: [{ host: "10.0.0.6", port: 7000 }, { host: "10.0.0.7", port: 7001 }] },
      redisSentinel: { name: "sessions", sentinels: [{ host: "s1", port: 26379 }, { host: "::1", port: 26380 }] },
      memcached: { servers: [{ host: "m1", port: 11211, address: "m1:11211" }] },
      memcachedMulti: {
        servers: [
          { host: "m1", port: 11211, address: "m1:11211" },
          { host: "m2", port: 11212, address: "m2:11212" },
        ],
      },
    });
  });

  test("uses only what is given, with the conventional sentinel name", () => {
    expect(servicesFromEnv({ REDIS_SENTINELS: "127.0.0.1:26379", MEMCACHED_SERVERS: "127.0.0.1:11211" })).toEqual({
      redisSentinel: { name: "mymaster", sentinels: [{ host: "127.0.0.1", port: 26379 }] },
      memcached: { servers: [{ host: "127.0.0.1", port: 11211, address: "127.0.0.1:11211" }] },
    });
    expect(servicesFromEnv({})).toEqual({});
  });

  test("rejects malformed values with the variable's name", () => {
    expect(() => parseHostPortList("localhost", "MEMCACHED_SERVERS")).toThrow(/MEMCACHED_SERVERS.*"localhost"/);
    expect(() => parseHostPortList("a:70000", "REDIS_SENTINELS")).toThrow(/REDIS_SENTINELS/);
    expect(() => servicesFromEnv({ REDIS_URL: "http://x:1" })).toThrow(/REDIS_URL/);
    expect(() => forcedProvider({ SHARED_SESSION_TEST_PROVIDER: "podman" })).toThrow(/env, docker or binaries/);
  });

  test("Docker is required in CI, when asked for, or when forced; optional elsewhere", () => {
    expect(dockerRequired({})).toBe(false);
    expect(dockerRequired({ SHARED_SESSION_TEST_PROVIDER: "binaries" })).toBe(false);
    expect(dockerRequired({ CI: "true" })).toBe(true);
    expect(dockerRequired({ SHARED_SESSION_REQUIRE_DOCKER: "1" })).toBe(true);
    expect(dockerRequired({ SHARED_SESSION_TEST_PROVIDER: "docker" })).toBe(true);
  });
});

describe(`shared services (${JSON.stringify(services().servedBy)})`, () => {
  const prefix = uniquePrefix("services-shared");
  const keys = Array.from({ length: 30 }, (_, index) => `${prefix}${index}`);

  test("Redis", async () => {
    const redis = new Redis(services().redis.url);
    try {
      await redis.set(`${prefix}k`, "v", "EX", 60);
      expect(await redis.get(`${prefix}k`)).toBe("v");
    } finally {
      redis.disconnect();
    }
  });

  test("Redis Cluster: keys land on all 3 masters", async () => {
    const { nodes } = services().redisCluster;
    const cluster = new Cluster(nodes);
    try {
      for (const key of keys) await cluster.set(key, "v", "EX", 60);
      const perMaster = await keysPerClusterMaster(nodes, keys);
      expect(perMaster.size).toBe(3);
      expect([...perMaster.values()].every((count) => count > 0)).toBe(true);
      expect([...perMaster.values()].reduce((a, b) => a + b, 0)).toBe(keys.length);
    } finally {
      cluster.disconnect();
    }
  });

  test("Redis Sentinel: a client following the master name reaches the master", async () => {
    const { name, sentinels } = services().redisSentinel;
    const redis = new Redis({ sentinels, name });
    try {
      await redis.set(`${prefix}s`, "v", "EX", 60);
      expect(await redis.get(`${prefix}s`)).toBe("v");
      expect(String(await redis.call("ROLE")).split(",")[0]).toBe("master");
    } finally {
      redis.disconnect();
    }
  });

  test("Memcached: one server", async () => {
    const [server] = services().memcached.servers;
    const client = memjs.Client.create(server?.address, { timeout: 1, retries: 0, logger: { log: () => undefined } });
    try {
      expect(await client.set(`${prefix}m`, "v", { expires: 60 })).toBe(true);
      expect((await client.get(`${prefix}m`)).value?.toString()).toBe("v");
    } finally {
      client.close();
    }
  });

  test("Memcached: keys spread over every server", async () => {
    const { servers } = services().memcachedMulti;
    expect(servers.length).toBeGreaterThanOrEqual(2);
    const client = memjs.Client.create(servers.map((server) => server.address).join(","), { timeout: 1, retries: 0 });
    try {
      for (const key of keys) expect(await client.set(key, "v", { expires: 60 })).toBe(true);
    } finally {
      client.close();
    }
    let total = 0;
    for (const server of servers) {
      const single = memjs.Client.create(server.address, { timeout: 1, retries: 0 });
      let held = 0;
      for (const key of keys) if ((await single.get(key)).value !== null) held += 1;
      single.close();
      expect(held, `keys on ${server.address}`).toBeGreaterThan(0);
      total += held;
    }
    expect(total).toBe(keys.length);
  });
});

// ---------------------------------------------------------------------------------------------
// Dedicated servers, through each launcher.
// ---------------------------------------------------------------------------------------------

/**
 * Docker tests run unless the run is forced to another provider, or Docker is missing on a machine
 * that does not require it (not CI, no SHARED_SESSION_REQUIRE_DOCKER=1); then they say so by skipping.
 */
const launchers: { name: LauncherName; skip: boolean; why?: string }[] = [
  {
    name: "docker",
    skip: (forced !== undefined && forced !== "docker") || dockerMissing !== undefined,
    why: dockerMissing && `skipped: ${dockerMissing}; set SHARED_SESSION_REQUIRE_DOCKER=1 to require it`,
  },
  { name: "binaries", skip: forced !== undefined && forced !== "binaries" },
];

for (const { name: provider, skip, why } of launchers) {
  describe.skipIf(skip).concurrent(`${provider} provider${why ? ` (${why})` : ""}`, () => {
    beforeAll(async () => {
      if (provider !== "docker") return;
      const problem = await dockerProblem();
      if (problem) {
        throw new Error(
          `the docker provider cannot run: ${problem}. Start a Docker engine (scripts/provision.sh), ` +
            `or set SHARED_SESSION_TEST_PROVIDER=binaries to test without Docker.`,
        );
      }
    });

    test("Redis: stop refuses, start serves on the same address, pause hangs, resume recovers", async ({ expect }) => {
      const redis = await startRedis({ provider });
      const client = failFastRedis(redis);
      try {
        expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
        await client.connect();
        await client.set("k", "v");
        expect(await client.get("k")).toBe("v");

        await redis.stop();
        expect(await redisPing(redis)).toEqual({ kind: "refused" });
        await expect(client.get("k")).rejects.toThrow();

        await redis.start();
        expect(await redisPing(redis)).toEqual({ kind: "reply", text: "+PONG\r\n" });
        client.disconnect();
        await client.connect();
        expect(await client.get("k")).toBeNull(); // no persistence

        await redis.pause();
        const started = Date.now();
        await expect(client.ping()).rejects.toThrow(/timed out/i);
        expect(Date.now() - started).toBeLessThan(2_000);
        expect(await redisPing(redis, 300)).toEqual({ kind: "timeout" });

        await redis.resume();
        expect(await client.ping()).toBe("PONG");
      } finally {
        client.disconnect();
        await redis.close();
      }
      expect(await redisPing(redis)).toEqual({ kind: "refused" });
    });

    test("Redis Cluster: 3 masters share the keys, replicas follow them, a replica takes over a stopped master", async ({ expect }) => {
      const cluster = await startRedisCluster({ provider, replicasPerMaster: 1 });
      const client = new Cluster(cluster.nodes, { clusterRetryStrategy: () => 100, redisOptions: { commandTimeout: 1_000 } });
      client.on("error", () => undefined);
      try {
        expect(cluster.masters).toHaveLength(3);
        expect(cluster.replicas).toHaveLength(3);
        expect(cluster.nodes).toHaveLength(6);
        const keys = Array.from({ length: 30 }, (_, index) => `key:${index}`);
        for (const key of keys) await client.set(key, "v");

        const sizes: number[] = [];
        for (const master of cluster.masters) {
          const direct = failFastRedis(master);
          await direct.connect();
          sizes.push(await direct.dbsize());
          // The slot of every key it holds is one of its own.
          const slots = (await direct.call("CLUSTER", "SLOTS")) as [number, number, [string, number]][];
          const own = slots.filter(([, , primary]) => primary[1] === master.port);
          for (const key of keys) {
            const slot = Number(await direct.call("CLUSTER", "KEYSLOT", key));
            const mine = own.some(([from, to]) => slot >= from && slot <= to);
            expect(await direct.exists(key).catch(() => 0), `${key} (slot ${slot}) on ${master.port}`).toBe(mine ? 1 : 0);
          }
          direct.disconnect();
        }
        expect(sizes.every((size) => size > 0), `DBSIZE per master: ${sizes.join(",")}`).toBe(true);
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(keys.length);

        for (const [index, replica] of cluster.replicas.entries()) {
          const direct = failFastRedis(replica);
          await direct.connect();
          await waitUntil(async () => (await direct.dbsize()) === sizes[index], 5_000, `replica ${replica.port} did not sync`);
          direct.disconnect();
        }

        const [victim] = cluster.masters;
        if (!victim) throw new Error("no master");
        await victim.stop();
        const tookMs = await waitUntil(
          async () => {
            for (const key of keys) await client.get(key);
            return true;
          },
          20_000,
          "the cluster did not fail over to the replica",
        );
        expect(await client.get("key:0")).toBe("v");
        console.log(`[${provider}] cluster failover served all keys again after ${tookMs} ms`);
      } finally {
        client.disconnect();
        await cluster.close();
      }
      for (const node of cluster.nodes) expect(await redisPing(node)).toEqual({ kind: "refused" });
    });

    test("Redis Sentinel: clients follow the master name, and stopping the master promotes the replica", async ({ expect }) => {
      const sentinel = await startRedisSentinel({ provider });
      const client = new Redis({ sentinels: sentinel.sentinels, name: sentinel.name, commandTimeout: 1_000 });
      client.on("error", () => undefined);
      try {
        await client.set("k", "v");
        expect(await client.get("k")).toBe("v");
        await waitUntil(
          () => withDirect(sentinel.replica, async (replica) => (await replica.get("k")) === "v"),
          5_000,
          "the replica did not receive the write",
        );

        await sentinel.master.stop();
        // Fresh connections: on promotion, Sentinel kills the clients of the new master.
        const tookMs = await waitUntil(
          () => withDirect(sentinel.replica, async (replica) => String(await replica.call("ROLE")).startsWith("master")),
          20_000,
          "the sentinel did not promote the replica",
        );
        await waitUntil(async () => (await client.set("k2", "v2")) === "OK", 10_000, "the client did not follow the new master");
        expect(await withDirect(sentinel.replica, (replica) => replica.get("k2"))).toBe("v2");
        expect(await client.get("k")).toBe("v");
        const [sentinelAddress] = sentinel.sentinels;
        if (!sentinelAddress) throw new Error("no sentinel");
        expect(await withDirect(sentinelAddress, (ask) => ask.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", sentinel.name))).toEqual([
          "127.0.0.1",
          String(sentinel.replica.port),
        ]);
        console.log(`[${provider}] sentinel promoted the replica ${tookMs} ms after the master stopped`);
      } finally {
        client.disconnect();
        await sentinel.close();
      }
      for (const node of [...sentinel.sentinels, sentinel.master, sentinel.replica]) {
        expect(await redisPing(node)).toEqual({ kind: "refused" });
      }
    });

    test("Memcached: 3 servers each hold keys; stop, start, pause and resume one of them", async ({ expect }) => {
      const memcached = await startMemcached(3, { provider });
      const client = memjs.Client.create(memcached.servers.map((server) => server.address).join(","), {
        timeout: 0.5,
        retries: 0,
        logger: { log: () => undefined },
      });
      try {
        expect(memcached.servers).toHaveLength(3);
        for (let index = 0; index < 30; index++) expect(await client.set(`key:${index}`, "v", { expires: 60 })).toBe(true);
        const items = await Promise.all(memcached.servers.map(async (server) => Number((await memcachedStats(server)).get("curr_items"))));
        expect(items.every((count) => count > 0), `curr_items per server: ${items.join(",")}`).toBe(true);
        expect(items.reduce((a, b) => a + b, 0)).toBe(30);

        const [server] = memcached.servers;
        if (!server) throw new Error("no server");
        expect(server.address).toBe(`127.0.0.1:${server.port}`);
        await server.stop();
        expect(await memcachedVersion(server)).toEqual({ kind: "refused" });
        await server.start();
        expect(await memcachedVersion(server)).toMatchObject({ kind: "reply", text: expect.stringMatching(/^VERSION /) });
        expect((await memcachedStats(server)).get("curr_items")).toBe("0");

        await server.pause();
        expect(await memcachedVersion(server, 300)).toEqual({ kind: "timeout" });
        await server.resume();
        expect(await memcachedVersion(server)).toMatchObject({ kind: "reply" });
      } finally {
        client.close();
        await memcached.close();
      }
      for (const server of memcached.servers) expect(await memcachedVersion(server)).toEqual({ kind: "refused" });
    });
  });
}
