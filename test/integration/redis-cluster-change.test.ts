/**
 * RedisStore on a Redis Cluster that changes under load: a dedicated 3-master Cluster with one
 * replica per master, and steady session traffic (logins, reads, writes, logouts) from simulated
 * users while slots move between masters (CLUSTER SETSLOT + MIGRATE, what `redis-cli --cluster
 * reshard` does), while a replica takes over by CLUSTER FAILOVER, and while a master hangs
 * (SIGSTOP) until its replica is elected in its place.
 *
 * Each user checks every answer against what it was last told was written: a session that is gone,
 * an update that is lost, or a logout that comes back is recorded with the time its write was
 * acknowledged. A request that fails is retried by the user (as a browser or load balancer would),
 * within a bounded time.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Redis, type Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore, createRedisClient } from "../../adapters/redis.js";
import { createSessionManager, type SessionManager } from "../../src/index.js";
import { startRedisCluster, type RedisClusterHandle } from "../services/index.js";
import type { RedisServer } from "../services/types.js";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";
const USERS = 16;
/** How long one user request is retried before it counts as failed, milliseconds. */
const RETRY_FOR_MS = 15_000;
const RETRY_DELAY_MS = 100;

let cluster: RedisClusterHandle;
let client: Cluster;
let manager: SessionManager;
const admins: Redis[] = [];

function admin(server: { host: string; port: number }): Redis {
  const redis = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 1, enableOfflineQueue: true });
  redis.on("error", () => undefined);
  admins.push(redis);
  return redis;
}

beforeAll(async () => {
  cluster = await startRedisCluster({ replicasPerMaster: 1 });
  client = createRedisClient({ clusterNodes: cluster.nodes });
  client.on("error", () => undefined);
  manager = createSessionManager({ store: new RedisStore({ client }), secret: SECRET });
}, 60_000);

afterAll(async () => {
  for (const redis of admins) redis.disconnect();
  client?.disconnect();
  await cluster?.close();
});

type Data = Record<string, unknown>;

/** Something a user saw that contradicts what it was told was written. */
interface Violation {
  readonly kind: "session lost" | "update lost" | "logout undone";
  /** When the write that was lost had been acknowledged (ms). */
  readonly ackedAt: number;
}

interface Traffic {
  stop(): Promise<void>;
  readonly requests: number;
  /** Requests that needed more than one attempt, and the most attempts any one needed. */
  readonly retried: number;
  readonly maxAttempts: number;
  /** Requests that still failed after RETRY_FOR_MS. */
  readonly failed: number;
  readonly errors: string[];
  readonly violations: Violation[];
  /** Sessions each user holds at the end, with what they must contain. */
  readonly live: { cookie: string; data: Data; ackedAt: number }[];
}

/** Steady traffic: each user logs in, reads and writes a few times, logs out, again, until stopped. */
function startTraffic(): Traffic {
  let running = true;
  const stats = { requests: 0, retried: 0, maxAttempts: 0, failed: 0, errors: [] as string[], violations: [] as Violation[] };
  const live = new Map<number, { cookie: string; data: Data; ackedAt: number }>();

  /** One user request, retried while it throws (a 503 from the store), within RETRY_FOR_MS. */
  async function request<T>(run: () => Promise<T>): Promise<T | undefined> {
    stats.requests += 1;
    const deadline = Date.now() + RETRY_FOR_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await run();
        if (attempt > 1) stats.retried += 1;
        stats.maxAttempts = Math.max(stats.maxAttempts, attempt);
        return result;
      } catch (err) {
        const message = err instanceof Error ? `${err.message} ${(err.cause as Error | undefined)?.message ?? ""}` : String(err);
        if (stats.errors.length < 50) stats.errors.push(message);
        if (Date.now() > deadline) {
          stats.failed += 1;
          return undefined;
        }
        await sleep(RETRY_DELAY_MS);
      }
    }
  }

  async function user(index: number): Promise<void> {
    let round = 0;
    while (running) {
      round += 1;
      const data: Data = { user: `u${index}`, round, n: 0 };
      const login = await request(async () => {
        const session = await manager.load(undefined, { secure: false });
        Object.assign(session, data);
        return (await manager.commit(session)).setCookie!.split(";")[0]!;
      });
      if (login === undefined) continue;
      let state = { cookie: login, data, ackedAt: Date.now() };
      live.set(index, state);
      let lost = false;
      for (let step = 0; step < 6 && running && !lost; step++) {
        const write = step % 2 === 1;
        const next = write ? { ...state.data, n: (state.data.n as number) + 1 } : state.data;
        const seen = await request(async () => {
          const session = await manager.load(state.cookie, { secure: false });
          if (session.isNew) return "gone" as const;
          const found: Data = { ...session };
          if (JSON.stringify(found) !== JSON.stringify(state.data)) return "stale" as const;
          if (write) Object.assign(session, next);
          await manager.commit(session);
          return "ok" as const;
        });
        if (seen === "gone" || seen === "stale") {
          stats.violations.push({ kind: seen === "gone" ? "session lost" : "update lost", ackedAt: state.ackedAt });
          lost = true;
        } else if (seen === "ok" && write) {
          state = { ...state, data: next, ackedAt: Date.now() };
          live.set(index, state);
        }
      }
      if (lost || !running) continue;
      const cookie = state.cookie;
      const loggedOut = await request(async () => {
        const session = await manager.load(cookie, { secure: false });
        await session.destroy();
        return Date.now();
      });
      live.delete(index);
      if (loggedOut === undefined) continue;
      // The logout must hold: the same cookie now starts a fresh session.
      const after = await request(async () => (await manager.load(cookie, { secure: false })).isNew);
      if (after === false) stats.violations.push({ kind: "logout undone", ackedAt: loggedOut });
    }
  }

  const users = Array.from({ length: USERS }, (_, i) => user(i));
  return {
    async stop() {
      running = false;
      await Promise.all(users);
    },
    get requests() {
      return stats.requests;
    },
    get retried() {
      return stats.retried;
    },
    get maxAttempts() {
      return stats.maxAttempts;
    },
    get failed() {
      return stats.failed;
    },
    errors: stats.errors,
    violations: stats.violations,
    get live() {
      return [...live.values()];
    },
  };
}

/** Every session a user still holds is there, with what was last written to it. */
async function expectLiveSessions(traffic: Traffic): Promise<void> {
  for (const { cookie, data } of traffic.live) {
    const session = await manager.load(cookie, { secure: false });
    expect(session.isNew, `session of ${String(data.user)}`).toBe(false);
    expect({ ...session }).toEqual(data);
  }
}

async function nodeId(server: { host: string; port: number }): Promise<string> {
  return String(await admin(server).call("CLUSTER", "MYID"));
}

/** The masters and the slot ranges each serves, from CLUSTER SHARDS-like CLUSTER SLOTS. */
async function slotOwners(): Promise<Map<number, number>> {
  const slots = (await admin(cluster.masters[0]!).call("CLUSTER", "SLOTS")) as [number, number, [string, number]][];
  const owners = new Map<number, number>();
  for (const [from, to, [, port]] of slots) for (let slot = from; slot <= to; slot++) owners.set(slot, port);
  return owners;
}

/**
 * Move `slots` from one master to another with their keys, as `redis-cli --cluster reshard` does:
 * IMPORTING on the target, MIGRATING on the source, MIGRATE the keys in batches, then every master
 * is told the new owner. Returns the number of keys moved.
 */
async function moveSlots(from: RedisServer, to: RedisServer, slots: readonly number[], masters: readonly RedisServer[]): Promise<number> {
  const source = admin(from);
  const target = admin(to);
  const [sourceId, targetId] = await Promise.all([nodeId(from), nodeId(to)]);
  let moved = 0;
  for (const slot of slots) {
    await target.call("CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceId);
    await source.call("CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetId);
    for (;;) {
      const keys = (await source.call("CLUSTER", "GETKEYSINSLOT", String(slot), "100")) as string[];
      if (keys.length === 0) break;
      await source.call("MIGRATE", to.host, String(to.port), "", "0", "5000", "KEYS", ...keys);
      moved += keys.length;
    }
    await target.call("CLUSTER", "SETSLOT", String(slot), "NODE", targetId);
    await source.call("CLUSTER", "SETSLOT", String(slot), "NODE", targetId);
    for (const other of masters) if (other !== from && other !== to) await admin(other).call("CLUSTER", "SETSLOT", String(slot), "NODE", targetId);
  }
  return moved;
}

/** Wait until `server` reports itself as a master of the cluster. */
async function waitForRole(server: RedisServer, role: "master" | "slave", withinMs: number): Promise<void> {
  const redis = admin(server);
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    const info = await redis.info("replication").catch(() => "");
    if (info.includes(`role:${role}`)) return;
    await sleep(100);
  }
  throw new Error(`${server.port} did not become ${role} within ${withinMs} ms`);
}

describe("RedisStore on a 3-master Cluster with replicas, under steady traffic", () => {
  it("slots move between masters while users log in, read, write and log out: nothing fails, nothing is lost, no CROSSSLOT", async () => {
    const traffic = startTraffic();
    await sleep(500);
    const [first, second, third] = cluster.masters as [RedisServer, RedisServer, RedisServer];
    const owners = await slotOwners();
    // 1,000 of the first master's slots (about 6 % of all keys) to the second, while traffic runs.
    // The slots that hold sessions right now go first, so that live session keys move (with 16 users, a
    // random 1,000 slots hold none of them about a third of the time).
    const ownSlots = [...owners].filter(([, port]) => port === first.port).map(([slot]) => slot);
    // Wait (bounded) until the traffic has stored sessions there: on a loaded machine its first logins
    // can take longer than the half second above.
    let keys: string[] = [];
    for (let waited = 0; keys.length < 3 && waited < 15_000; waited += 100) {
      keys = (await admin(first).keys("*")) as string[];
      if (keys.length < 3) await sleep(100);
    }
    expect(keys.length, "sessions stored on the first master before its slots move").toBeGreaterThan(0);
    const busy = new Set(await Promise.all(keys.map(async (key) => Number(await admin(first).call("CLUSTER", "KEYSLOT", key)))));
    const slots = [...ownSlots.filter((slot) => busy.has(slot)), ...ownSlots.filter((slot) => !busy.has(slot))].slice(0, 1_000);
    expect(slots).toHaveLength(1_000);
    // One session that nobody logs out, stored in a slot that moves: at least one live key is always
    // migrated (the traffic's own keys in those slots may all be logged out before their slot moves).
    const moving = new Set(slots);
    let pinned: { cookie: string; slot: number } | undefined;
    for (let i = 0; i < 2_000 && pinned === undefined; i++) {
      const session = await manager.load(undefined, { secure: false });
      (session as unknown as Record<string, unknown>).pinned = i;
      const cookie = (await manager.commit(session)).setCookie!.split(";")[0]!;
      const slot = Number(await admin(first).call("CLUSTER", "KEYSLOT", `sess:${manager.storeKeyOf(session.id)}`));
      if (moving.has(slot)) pinned = { cookie, slot };
    }
    expect(pinned, "a session stored in a slot that moves").toBeDefined();
    const moved = await moveSlots(first, second, slots, [first, second, third]);
    await sleep(500);
    await traffic.stop();

    const after = await slotOwners();
    for (const slot of slots) expect(after.get(slot)).toBe(second.port);
    expect(moved, "session keys moved while in use").toBeGreaterThan(0);
    // The pinned session moved with its slot and is read from its new master.
    expect(typeof (await manager.load(pinned!.cookie, { secure: false }) as unknown as Record<string, unknown>).pinned).toBe("number");
    expect(traffic.requests).toBeGreaterThan(500);
    expect(traffic.errors.filter((e) => /CROSSSLOT/.test(e))).toEqual([]);
    expect(traffic.failed).toBe(0);
    // ioredis follows the MOVED and ASK redirections itself: no request needed a second attempt.
    expect({ retried: traffic.retried, errors: traffic.errors.slice(0, 3) }).toEqual({ retried: 0, errors: [] });
    expect(traffic.violations).toEqual([]);
    await expectLiveSessions(traffic);
  }, 60_000);

  it("a replica takes over by CLUSTER FAILOVER under the same traffic: requests retried at most briefly, nothing lost", async () => {
    const traffic = startTraffic();
    await sleep(500);
    const replica = cluster.replicas[0]!;
    await admin(replica).call("CLUSTER", "FAILOVER");
    await waitForRole(replica, "master", 10_000);
    await sleep(1_000);
    await traffic.stop();

    expect(traffic.failed).toBe(0);
    expect(traffic.errors.filter((e) => /CROSSSLOT/.test(e))).toEqual([]);
    // A coordinated failover: the replica catches up before it takes over, so no write is lost.
    expect(traffic.violations).toEqual([]);
    await expectLiveSessions(traffic);
  }, 60_000);

  it("a master hangs and its replica is elected: requests to its slots are retried until then; only writes acknowledged just before the hang can be lost", async () => {
    const traffic = startTraffic();
    await sleep(500);
    const master = cluster.masters[1]!;
    const replica = cluster.replicas[1]!;
    const hungAt = Date.now();
    await master.pause();
    try {
      // cluster-node-timeout is 2 s in these tests: the replica is elected a few seconds later.
      await waitForRole(replica, "master", 20_000);
    } finally {
      await master.resume();
    }
    await waitForRole(master, "slave", 20_000);
    const demotedAt = Date.now();
    await sleep(1_000);
    await traffic.stop();

    process.stderr.write(
      `cluster hang: ${traffic.requests} requests, ${traffic.retried} retried (at most ${traffic.maxAttempts} attempts), ` +
        `${traffic.violations.length} lost writes (${traffic.violations.map((v) => `${v.kind} acked ${v.ackedAt - hungAt} ms after the hang`).join(", ")})\n`,
    );
    expect(traffic.failed).toBe(0);
    expect(traffic.errors.filter((e) => /CROSSSLOT/.test(e))).toEqual([]);
    // Requests to the hung master's slots waited for the election, within the retry budget.
    expect(traffic.maxAttempts).toBeGreaterThan(1);
    // What Redis itself can lose, and nothing else: it replicates asynchronously, so what the hung
    // master acknowledged in its last moments may not have reached the replica; and once resumed,
    // it takes writes as master until it learns it was replaced, then drops them as it becomes a
    // replica. Anything lost was acknowledged in that window, never before it.
    for (const violation of traffic.violations) expect(violation.ackedAt, violation.kind).toBeGreaterThanOrEqual(hungAt - 1_000);
    for (const violation of traffic.violations) expect(violation.ackedAt, violation.kind).toBeLessThanOrEqual(demotedAt);
    await expectLiveSessions(traffic);
  }, 60_000);
});
