/**
 * Outages of the backing service, through Express, Koa and Fastify, on real servers of this file's
 * own with real faults (test-services): Redis standalone, one master of a Redis Cluster, the
 * Sentinel master (through ioredis), Redis standalone and a Cluster master through node-redis, and
 * one of three Memcached servers; each stopped (connection refused), paused (the server hangs) and
 * restarted.
 *
 * What is asserted is what a user and an operator see: statuses and `Retry-After`, that every
 * request gets an answer (a client-side bound of storeTimeout + 5 s fails the test if hit, no
 * timing is asserted otherwise), that the app recovers by itself, that a pause loses nothing,
 * that a write which timed out never brings a destroyed session back, that client queues do
 * not grow, and that no promise rejection goes unhandled.
 */
import { Cluster, Redis } from "ioredis";
import type memjs from "memjs";
import { createClient, createCluster } from "redis";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createMemcachedClient, MemcachedStore } from "../../adapters/memcached.js";
import { createRedisClient, RedisStore } from "../../adapters/redis.js";
import type { SessionOptions, SessionStore } from "../../src/index.js";
import {
  startMemcached,
  startRedis,
  startRedisCluster,
  startRedisSentinel,
  uniquePrefix,
  type FaultControls,
  type MemcachedHandle,
  type RedisClusterHandle,
  type RedisHandle,
  type RedisSentinelHandle,
} from "../services/index.js";
import { storeKeysFor } from "../helpers/store-keys.js";
import { FRAMEWORKS, header, idOfValue, raw, sid, startApp, type App, type FrameworkName, type RawResponse } from "../helpers/failure-apps.js";

const SECRET = "the-current-secret-of-at-least-32-chars";
const keyOf = storeKeysFor(SECRET);
/** Seconds: small, so that the matrix runs in reasonable time. */
const STORE_TIMEOUT = 0.5;
const RETRY_AFTER = 3;
/** A request that gets no answer within this fails the test. */
const BOUND_MS = (STORE_TIMEOUT + 5) * 1000;
/** How long recovery may take after the server is back (reconnect backoff, Sentinel failover, Cluster convergence). */
const RECOVERY_MS = 45_000;

type Fault = "stopped" | "paused" | "restarted";
const FAULTS: readonly Fault[] = ["stopped", "paused", "restarted"];

interface Queues {
  /** Commands waiting for a connection (must stay 0: the clients fail fast instead). */
  offline: number;
  /** Commands sent and waiting for an answer. */
  pending: number;
}

/**
 * Callbacks memjs may keep after an outage for requests it never sent: when a server comes back,
 * the `close` event of the socket memjs gave up on can clear its reference to the socket just
 * opened, and a request issued in that instant is neither written nor given a deadline. The
 * store's own timeout answers the request (a 503); memjs drops the callback at that server's next
 * error. Seen here: at most one per outage, never growing with traffic.
 */
const MEMJS_ORPHANS = 2;

/** One backing service with a node this file can fault, and the store the apps use on it. */
interface Backend {
  readonly name: string;
  /** Only part of the keys live on the faulted node (a new session may land elsewhere). */
  readonly partial: boolean;
  /** A failover may bring the service back before the faulted server is (Sentinel). */
  readonly failsOver: boolean;
  readonly store: SessionStore;
  /** The server a fault hits now. */
  target(): Promise<FaultControls>;
  /** The faulted node holds this session. */
  holds(id: string): Promise<boolean>;
  /** The record as the service holds it, read around the store (only while the service is up). */
  read(id: string): Promise<string | null>;
  /** Wait until the service is ready for the next fault (replicas in sync). */
  settle(): Promise<void>;
  /**
   * Wait until no failover is under way, so that a write acknowledged now stays. Redis replicates
   * asynchronously: a write the old master acknowledges in the moments before Sentinel finishes
   * promoting its replica is lost when that master rejoins as a replica. Redis documents this; no
   * client can prevent it, so the checks of durability below run once the topology is settled.
   */
  converged(): Promise<void>;
  queues(): Queues;
  /** Callbacks the client may keep for good after an outage (see {@link MEMJS_ORPHANS}). */
  readonly orphansAllowed: number;
  close(): Promise<void>;
}

function redisQueues(client: Redis): Queues {
  const offline = (client as unknown as { offlineQueue: { length: number } }).offlineQueue.length;
  return { offline, pending: client.commandQueue.length };
}

function quiet<C extends Redis | Cluster>(client: C): C {
  client.on("error", () => undefined);
  return client;
}

/** ioredis settings of the apps' clients: fail fast, commands bounded below the manager's storeTimeout. */
const CLIENT = { commandTimeout: 400 } as const;
const STORE = { timeout: 0.45 } as const;

async function redisStandalone(): Promise<Backend> {
  const server: RedisHandle = await startRedis();
  const prefix = uniquePrefix("outages");
  const client = quiet(createRedisClient(server.url, CLIENT));
  const admin = quiet(new Redis(server.url));
  return {
    name: "Redis standalone",
    partial: false,
    failsOver: false,
    store: new RedisStore({ client, prefix, ...STORE }),
    target: async () => server,
    holds: async () => true,
    read: (id) => admin.get(prefix + keyOf(id)),
    settle: async () => undefined,
    converged: async () => undefined,
    queues: () => redisQueues(client),
    orphansAllowed: 0,
    async close() {
      client.disconnect();
      admin.disconnect();
      await server.close();
    },
  };
}

async function redisCluster(): Promise<Backend> {
  const cluster: RedisClusterHandle = await startRedisCluster();
  const prefix = uniquePrefix("outages");
  const client = quiet(createRedisClient({ clusterNodes: cluster.nodes, redisOptions: CLIENT }));
  const admin = quiet(new Cluster(cluster.nodes));
  const victim = cluster.masters[0]!;
  const direct = quiet(new Redis({ host: victim.host, port: victim.port, maxRetriesPerRequest: 1 }));
  return {
    name: "Redis Cluster master",
    partial: true,
    failsOver: false,
    store: new RedisStore({ client, prefix, ...STORE }),
    target: async () => victim,
    // A master answers MOVED for keys of another master's slots.
    holds: async (id) => (await direct.exists(prefix + keyOf(id)).catch(() => 0)) === 1,
    read: (id) => admin.get(prefix + keyOf(id)),
    settle: async () => undefined,
    converged: async () => undefined,
    queues: () => {
      const nodes = (client as Cluster).nodes("all");
      const own = (client as unknown as { offlineQueue: { length: number } }).offlineQueue.length;
      return nodes.map(redisQueues).reduce((a, b) => ({ offline: a.offline + b.offline, pending: a.pending + b.pending }), { offline: own, pending: 0 });
    },
    orphansAllowed: 0,
    async close() {
      client.disconnect();
      admin.disconnect();
      direct.disconnect();
      await cluster.close();
    },
  };
}

/** The Redis server on `port` is a master, and its replica has every write it acknowledged. */
async function expectReplicatedMaster(port: number): Promise<void> {
  const master = quiet(new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 0, lazyConnect: true }));
  try {
    await master.connect();
    expect(((await master.call("ROLE")) as unknown[])[0]).toBe("master");
    expect(await master.call("WAIT", "1", "500")).toBe(1);
  } finally {
    master.disconnect();
  }
}

async function redisSentinel(): Promise<Backend> {
  const deployment: RedisSentinelHandle = await startRedisSentinel();
  const prefix = uniquePrefix("outages");
  const where = { sentinels: deployment.sentinels, name: deployment.name };
  const client = quiet(createRedisClient({ ...where, ...CLIENT }));
  const admin = quiet(new Redis({ ...where, failoverDetector: true }));
  const sentinel = quiet(new Redis({ host: deployment.sentinels[0]!.host, port: deployment.sentinels[0]!.port }));
  const masterPort = async (): Promise<number> => {
    const [, port] = (await sentinel.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", deployment.name)) as [string, string];
    return Number(port);
  };
  let failoverAskedAt = 0;
  return {
    name: "Redis Sentinel master",
    partial: false,
    failsOver: true,
    store: new RedisStore({ client, prefix, ...STORE }),
    // Always the server that was master at start: its replica was started with a fixed
    // `--replicaof` pointing at it, so faulting it keeps the topology sound whatever fails over.
    target: async () => deployment.master,
    holds: async () => true,
    read: (id) => admin.get(prefix + keyOf(id)),
    async settle() {
      // Before a fault: the original master is master again (a failover of the previous case is
      // undone) and its replica is in sync, so that Sentinel can fail over.
      await vi.waitFor(
        async () => {
          const port = await masterPort();
          if (port !== deployment.master.port) {
            if (Date.now() - failoverAskedAt > 12_000) {
              failoverAskedAt = Date.now();
              await sentinel.call("SENTINEL", "FAILOVER", deployment.name).catch(() => undefined);
            }
            throw new Error(`Sentinel names ${port} as master; waiting for the failback to ${deployment.master.port}`);
          }
          await expectReplicatedMaster(port);
        },
        { timeout: RECOVERY_MS * 2, interval: 500 },
      );
    },
    async converged() {
      // Every Sentinel names the same master and none sees it down or is failing it over; that
      // master says so itself, the other server replicates from it, and the apps' client uses it.
      const sentinels = deployment.sentinels.map((address) => quiet(new Redis({ ...address, maxRetriesPerRequest: 0 })));
      try {
        await vi.waitFor(
          async () => {
            const views = await Promise.all(
              sentinels.map(async (each) => {
                const fields = (await each.call("SENTINEL", "MASTER", deployment.name)) as string[];
                const record = new Map<string, string>();
                for (let i = 0; i + 1 < fields.length; i += 2) record.set(fields[i]!, fields[i + 1]!);
                return `${record.get("port")} ${record.get("flags")}`;
              }),
            );
            const port = await masterPort();
            expect(views).toEqual(sentinels.map(() => `${port} master`));
            await expectReplicatedMaster(port);
            // And the apps' client has followed it (Sentinel drops the clients of a demoted master).
            expect(client.status).toBe("ready");
            expect((client as unknown as { stream?: { remotePort?: number } }).stream?.remotePort).toBe(port);
          },
          { timeout: RECOVERY_MS * 2, interval: 250 },
        );
      } finally {
        for (const each of sentinels) each.disconnect();
      }
    },
    queues: () => redisQueues(client),
    orphansAllowed: 0,
    async close() {
      client.disconnect();
      admin.disconnect();
      sentinel.disconnect();
      await deployment.close();
    },
  };
}

/**
 * node-redis keeps its queues private: count the commands the store hands it instead. `offline`
 * counts those still waiting that were handed over while the client was not connected (with the
 * store's gate and `disableOfflineQueue`, none should be).
 */
function countedNodeRedis<C extends { sendCommand: (...args: never[]) => Promise<unknown> }>(client: C, connected: () => boolean): { client: C; queues: () => Queues } {
  let pending = 0;
  let offline = 0;
  const send = client.sendCommand.bind(client) as (...args: unknown[]) => Promise<unknown>;
  (client as unknown as { sendCommand: (...args: unknown[]) => Promise<unknown> }).sendCommand = (...args) => {
    const whileDown = !connected();
    pending += 1;
    if (whileDown) offline += 1;
    const done = () => {
      pending -= 1;
      if (whileDown) offline -= 1;
    };
    const reply = send(...args);
    reply.then(done, done);
    return reply;
  };
  return { client, queues: () => ({ offline, pending }) };
}

/** node-redis settings of the apps' clients, as the README asks for them. */
const NODE_REDIS = { disableOfflineQueue: true } as const;

async function nodeRedisStandalone(): Promise<Backend> {
  const server: RedisHandle = await startRedis();
  const prefix = uniquePrefix("outages");
  const made = createClient({ url: server.url, ...NODE_REDIS });
  made.on("error", () => undefined);
  const { client, queues } = countedNodeRedis(made, () => made.isReady);
  const admin = quiet(new Redis(server.url));
  return {
    name: "node-redis standalone",
    partial: false,
    failsOver: false,
    store: new RedisStore({ client, prefix, ...STORE }),
    target: async () => server,
    holds: async () => true,
    read: (id) => admin.get(prefix + keyOf(id)),
    settle: async () => undefined,
    converged: async () => undefined,
    queues,
    orphansAllowed: 0,
    async close() {
      client.destroy();
      admin.disconnect();
      await server.close();
    },
  };
}

async function nodeRedisCluster(): Promise<Backend> {
  const cluster: RedisClusterHandle = await startRedisCluster();
  const prefix = uniquePrefix("outages");
  const made = createCluster({ rootNodes: cluster.nodes.map((node) => ({ url: `redis://${node.host}:${node.port}` })), defaults: NODE_REDIS });
  made.on("error", () => undefined);
  const { client, queues } = countedNodeRedis(made, () => made.isOpen);
  const admin = quiet(new Cluster(cluster.nodes));
  const victim = cluster.masters[0]!;
  const direct = quiet(new Redis({ host: victim.host, port: victim.port, maxRetriesPerRequest: 1 }));
  return {
    name: "node-redis Cluster master",
    partial: true,
    failsOver: false,
    store: new RedisStore({ client, prefix, ...STORE }),
    target: async () => victim,
    // A master answers MOVED for keys of another master's slots.
    holds: async (id) => (await direct.exists(prefix + keyOf(id)).catch(() => 0)) === 1,
    read: (id) => admin.get(prefix + keyOf(id)),
    settle: async () => undefined,
    converged: async () => undefined,
    queues,
    orphansAllowed: 0,
    async close() {
      client.destroy();
      admin.disconnect();
      direct.disconnect();
      await cluster.close();
    },
  };
}

type MemjsServer = { responseCallbacks: Record<string, unknown>; connectCallbacks: unknown[]; requestTimeouts: unknown[] };

async function memcachedTrio(): Promise<Backend> {
  const handle: MemcachedHandle = await startMemcached(3);
  const prefix = uniquePrefix("outages");
  const addresses = handle.servers.map((s) => s.address);
  const client = createMemcachedClient(addresses, { timeout: 0.2 });
  const admin = createMemcachedClient(addresses);
  const victim = handle.servers[1]!;
  const direct = createMemcachedClient([victim.address]);
  const get = async (c: memjs.Client, key: string): Promise<string | null> => {
    const { value } = await c.get(key);
    return value === null ? null : value.toString("utf8");
  };
  return {
    name: "Memcached (1 of 3 servers)",
    partial: true,
    failsOver: false,
    store: new MemcachedStore({ client, prefix, ...STORE }),
    target: async () => victim,
    holds: async (id) => (await get(direct, prefix + keyOf(id)).catch(() => null)) !== null,
    read: (id) => get(admin, prefix + keyOf(id)),
    settle: async () => undefined,
    converged: async () => undefined,
    queues: () => {
      const servers = (client as unknown as { servers: MemjsServer[] }).servers;
      return {
        offline: servers.reduce((n, s) => n + s.connectCallbacks.length, 0),
        pending: servers.reduce((n, s) => n + Object.keys(s.responseCallbacks).length, 0),
      };
    },
    orphansAllowed: MEMJS_ORPHANS,
    async close() {
      for (const c of [client, admin, direct]) c.close();
      await handle.close();
    },
  };
}

const BACKENDS: { name: string; open: () => Promise<Backend> }[] = [
  { name: "Redis standalone", open: redisStandalone },
  { name: "Redis Cluster master", open: redisCluster },
  { name: "Redis Sentinel master", open: redisSentinel },
  { name: "node-redis standalone", open: nodeRedisStandalone },
  { name: "node-redis Cluster master", open: nodeRedisCluster },
  { name: "Memcached (1 of 3 servers)", open: memcachedTrio },
];

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeAll(() => {
  process.on("unhandledRejection", onUnhandled);
});
afterAll(() => {
  process.off("unhandledRejection", onUnhandled);
});

/** One request, which must be answered within {@link BOUND_MS}. */
function call(app: App, method: string, path: string, cookie?: string): Promise<RawResponse> {
  return raw(app.port, method, path, cookie, BOUND_MS);
}

function expect503(response: RawResponse, what: string): void {
  expect(response.status, `${what}: ${response.body.slice(0, 200)}`).toBe(503);
  expect(header(response, "retry-after"), what).toBe(String(RETRY_AFTER));
  // No cookie is set or cleared on a 503: the client keeps the session it has.
  expect(sid(response), what).toBeUndefined();
}

/** 200, or a 503 with Retry-After: what a request may get while a service is coming back. */
function expect200or503(response: RawResponse, what: string): void {
  expect([200, 503], what).toContain(response.status);
  if (response.status === 503) expect(header(response, "retry-after"), what).toBe(String(RETRY_AFTER));
}

function json(response: RawResponse): Record<string, unknown> {
  return JSON.parse(response.body) as Record<string, unknown>;
}

describe.each(BACKENDS)("$name", ({ open }) => {
  let backend: Backend;
  const apps = new Map<FrameworkName, App>();
  /** The same apps with `onStoreError: "continue"`. */
  const lenient = new Map<FrameworkName, App>();

  beforeAll(async () => {
    backend = await open();
    const options: SessionOptions = { store: backend.store, secret: SECRET, storeTimeout: STORE_TIMEOUT, retryAfter: RETRY_AFTER };
    for (const framework of FRAMEWORKS) {
      apps.set(framework, await startApp(framework, options));
      lenient.set(framework, await startApp(framework, { ...options, onStoreError: "continue" }));
    }
  });
  afterAll(async () => {
    await Promise.all([...apps.values(), ...lenient.values()].map((app) => app.close()));
    await backend?.close();
  });
  afterEach(() => {
    expect(unhandled).toEqual([]);
  });

  /** Log in until the session lives on the node the fault will hit. */
  async function loginOnTarget(app: App): Promise<{ value: string; id: string; cookie: string }> {
    for (let attempt = 0; attempt < 60; attempt++) {
      const response = await call(app, "POST", "/login");
      expect(response.status).toBe(200);
      const value = sid(response)!;
      const id = idOfValue(value);
      if (await backend.holds(id)) return { value, id, cookie: `sid=${value}` };
    }
    throw new Error("no session landed on the faulted node in 60 logins");
  }

  describe.each(FAULTS)("%s", (fault) => {
    it.each(FRAMEWORKS)("%s", async (framework) => {
      const app = apps.get(framework)!;
      const cont = lenient.get(framework)!;
      await backend.settle();
      const a = await loginOnTarget(app);
      const b = await loginOnTarget(app);
      await backend.settle(); // replicated before the fault
      const recordOfA = await backend.read(a.id);
      expect(recordOfA).not.toBeNull();

      // A write that will be caught by the pause: loaded before it, committed during it.
      const gate = fault === "paused" ? app.gate() : undefined;
      const gated = gate ? call(app, "POST", "/gated-visit", b.cookie) : undefined;
      await gate?.reached;

      const server = await backend.target();
      if (fault === "paused") await server.pause();
      else await server.stop();
      if (fault === "restarted") await server.start();
      const strict = fault !== "restarted";
      let restored = fault === "restarted";
      let peak: Queues = backend.queues();
      try {
        // Everything at once, right after the fault (well before a Sentinel can fail over).
        const [noop, me, visit, login, contMe, contVisit, contLogin] = await Promise.all([
          call(app, "GET", "/noop"),
          call(app, "GET", "/me", a.cookie),
          call(app, "POST", "/visit", a.cookie),
          call(app, "POST", "/login"),
          call(cont, "GET", "/me", a.cookie),
          call(cont, "POST", "/visit", a.cookie),
          call(cont, "POST", "/login"),
        ]);
        peak = backend.queues();
        // A request that needs no store is served as usual.
        expect(noop.status).toBe(200);
        expect(noop.setCookies).toEqual([]);
        if (strict) {
          expect503(me, "a read of a session on the failed node");
          expect503(visit, "a write of a session on the failed node");
          if (backend.partial) expect200or503(login, "a new session (it may land on a healthy node)");
          else expect503(login, "a new session");
          // onStoreError "continue": served without a session, and no cookie.
          expect(contMe.status).toBe(200);
          expect(json(contMe)).toMatchObject({ isNew: true, userId: null, visits: null });
          expect(contMe.setCookies).toEqual([]);
          expect(contVisit.status).toBe(200);
          expect(contVisit.setCookies).toEqual([]);
          expect(contLogin.status).toBe(200);
          if (!backend.partial) expect(contLogin.setCookies).toEqual([]);
        } else {
          for (const [what, response] of Object.entries({ me, visit, login })) expect200or503(response, what);
          for (const response of [contMe, contVisit, contLogin]) expect(response.status).toBe(200);
        }
        // Nothing waits for a connection: the clients fail fast instead of queueing.
        expect(peak.offline).toBe(0);

        if (gated !== undefined) {
          gate!.release();
          const late = await gated;
          if (backend.failsOver) expect200or503(late, "a write caught by the pause");
          else expect503(late, "a write caught by the pause");
          peak = backend.queues();
          // At most one command per request of this case waits for the hung server.
          expect(peak.pending).toBeLessThanOrEqual(12);
          expect(peak.offline).toBe(0);
        }
      } finally {
        if (!restored) {
          if (fault === "paused") await server.resume();
          else await server.start();
          restored = true;
        }
      }

      // Back without restarting the app: the first session answers again.
      let after!: RawResponse;
      await vi.waitFor(
        async () => {
          after = await call(app, "GET", "/me", a.cookie);
          expect(after.status).toBe(200);
        },
        { timeout: RECOVERY_MS, interval: 250 },
      );
      await backend.converged();
      if (fault === "paused") {
        // A pause loses nothing, and the requests refused during it changed nothing.
        expect(json(after)).toMatchObject({ isNew: false, userId: 1, visits: 1 });
        expect(await backend.read(a.id)).toBe(recordOfA);
      } else if (!backend.failsOver) {
        // These test servers keep nothing on disk: a stopped server comes back empty.
        expect(json(after)).toMatchObject({ isNew: true, userId: null });
      }
      // And writes work again: a new session is stored and reads back.
      const fresh = await call(app, "POST", "/login");
      expect(fresh.status).toBe(200);
      const freshCookie = `sid=${sid(fresh)!}`;
      expect(json(await call(app, "GET", "/me", freshCookie))).toMatchObject({ isNew: false, userId: 1 });

      if (fault === "paused") {
        // The write that timed out may land when the server resumes (it had received it), but a
        // logout after that is final: nothing brings the destroyed session back.
        await vi.waitFor(
          async () => {
            const logout = await call(app, "POST", "/logout", b.cookie);
            expect(logout.status).toBe(200);
          },
          { timeout: RECOVERY_MS, interval: 250 },
        );
        await new Promise((resolve) => setTimeout(resolve, 2000)); // longer than any client retry or command timeout
        expect(await backend.read(b.id)).toBeNull();
        expect(json(await call(app, "GET", "/me", b.cookie))).toMatchObject({ isNew: true, userId: null });
      }

      // Nothing left waiting in the clients once the service is back.
      await vi.waitFor(
        () => {
          const { offline, pending } = backend.queues();
          expect(offline).toBe(0);
          expect(pending).toBeLessThanOrEqual(backend.orphansAllowed);
        },
        { timeout: 10_000, interval: 100 },
      );
      expect(app.errors.every((err) => (err as { status?: number }).status === 503)).toBe(true);
      app.errors.length = 0;
      cont.errors.length = 0;
      expect(unhandled).toEqual([]);
    }, 240_000);
  });
});
