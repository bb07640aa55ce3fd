/**
 * "Log out everywhere" cannot be escaped by a login racing it (#19 item 1), on real Redis, standalone
 * a 3-master Cluster and Sentinel. The login's app process talks to Redis through a proxy that holds what it
 * sends at a chosen point of the protocol (after its index entry, after its record, before both), while
 * another process lists the owner's sessions or logs the owner out everywhere; then the proxy lets the
 * login go on. No sleeps: the hold is engaged from the `shared-session:store` tracing channel.
 */
import { tracingChannel } from "node:diagnostics_channel";
import fc from "fast-check";
import type { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore, createRedisClient } from "../../adapters/redis.js";
import { createSessionManager, type Session, type SessionManager } from "../../src/index.js";
import { GateGroup } from "../helpers/gate-proxy.js";
import { services, uniquePrefix } from "../services/index.js";
import { closeClients, rawCluster, rawRedis, tracked } from "../helpers/redis-clients.js";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";
type Data = { userId?: string; n?: number };
type DataSession = Session<Data> & Data;

afterAll(() => closeClients());

/** Engage a group's hold when the next store call named `operation` settles (the next one is then held). */
let armed: { operation: string; group: GateGroup } | null = null;
const noop = () => undefined;
const storeTrace = tracingChannel("shared-session:store");
const subscriber = {
  start: noop,
  end: noop,
  asyncStart: noop,
  error: noop,
  asyncEnd(ctx: unknown) {
    const { operation } = ctx as { operation: string };
    if (armed !== null && operation === armed.operation) {
      armed.group.hold();
      armed = null;
    }
  },
};
beforeAll(() => storeTrace.subscribe(subscriber));
afterAll(() => storeTrace.unsubscribe(subscriber));

async function request(manager: SessionManager<Data>, cookie: string | undefined, handler: (s: DataSession) => unknown = noop) {
  const session = (await manager.load(cookie, { secure: false })) as DataSession;
  await handler(session);
  const { setCookie } = await manager.commit(session);
  if (setCookie === undefined) return { session, cookie };
  return { session, cookie: /Max-Age=0/.test(setCookie) ? undefined : setCookie.split(";")[0]! };
}

function login(manager: SessionManager<Data>, userId: string) {
  return request(manager, undefined, async (s) => {
    await s.regenerate();
    s.userId = userId;
  });
}

/** Whether a cookie still names a live session of `userId`. */
async function alive(manager: SessionManager<Data>, cookie: string | undefined, userId: string): Promise<boolean> {
  if (cookie === undefined) return false;
  const { session } = await request(manager, cookie);
  return !session.isNew && session.userId === userId;
}

/** Start a new millisecond, so that a login after a revocation is owned after its mark. */
async function nextMillisecond(): Promise<void> {
  const t = Date.now();
  while (Date.now() <= t) await new Promise((resolve) => setImmediate(resolve));
}

/** Where a login is held: before anything reaches Redis, after its index entry, after its record (before it reads the mark). */
type HoldPoint = "start" | "owners.add" | "create";

interface Topology {
  /** A client of the login's process, whose every connection goes through `group`. */
  proxied(group: GateGroup): Promise<Redis | Cluster>;
  direct(): Redis | Cluster;
  raw(): Redis | Cluster;
}

const topologies: [string, Topology][] = [
  [
    "a standalone server",
    {
      async proxied(group) {
        const url = new URL(services().redis.url);
        const port = await group.proxy({ host: url.hostname, port: Number(url.port) });
        url.hostname = "127.0.0.1";
        url.port = String(port);
        return createRedisClient(url.toString());
      },
      direct: () => createRedisClient(services().redis.url),
      raw: () => rawRedis(services().redis.url),
    },
  ],
  [
    "a 3-master Cluster",
    {
      async proxied(group) {
        // Every node as the cluster announces it is reached through a proxy (ioredis `natMap`).
        const raw = rawCluster(services().redisCluster.nodes);
        const lines = String(await raw.cluster("NODES")).trim().split("\n");
        const natMap: Record<string, { host: string; port: number }> = {};
        const entry: { host: string; port: number }[] = [];
        for (const line of lines) {
          const address = line.split(" ")[1]!.split("@")[0]!;
          const colon = address.lastIndexOf(":");
          const host = address.slice(0, colon);
          const port = Number(address.slice(colon + 1));
          const proxyPort = await group.proxy({ host, port });
          natMap[address] = { host: "127.0.0.1", port: proxyPort };
          entry.push({ host: "127.0.0.1", port: proxyPort });
        }
        return createRedisClient({ clusterNodes: entry, natMap });
      },
      direct: () => createRedisClient({ clusterNodes: services().redisCluster.nodes }),
      raw: () => rawCluster(services().redisCluster.nodes),
    },
  ],
  [
    "Sentinel (master behind the proxy)",
    {
      async proxied(group) {
        // The sentinels answer directly; the master they name is reached through a proxy (ioredis `natMap`).
        const { sentinels, name } = services().redisSentinel;
        const sentinel = rawRedis({ host: sentinels[0]!.host, port: sentinels[0]!.port });
        const [host, port] = (await sentinel.call("SENTINEL", "get-master-addr-by-name", name)) as [string, string];
        const proxyPort = await group.proxy({ host, port: Number(port) });
        return createRedisClient({ sentinels, name, natMap: { [`${host}:${port}`]: { host: "127.0.0.1", port: proxyPort } } });
      },
      direct: () => createRedisClient({ sentinels: services().redisSentinel.sentinels, name: services().redisSentinel.name }),
      raw: () => rawRedis({ sentinels: services().redisSentinel.sentinels, name: services().redisSentinel.name }),
    },
  ],
];

describe.each(topologies)("a login racing the owner index on %s", (_label, topology) => {
  const groups: GateGroup[] = [];
  afterAll(async () => {
    for (const g of groups) await g.close();
  });

  /** Two app processes on one prefix: `loginSide` behind its own gate, `revoker` direct. */
  async function processes(count = 1) {
    const prefix = uniquePrefix("revocation");
    const make = (client: Redis | Cluster) =>
      createSessionManager<Data>({ store: new RedisStore({ client: tracked(client), prefix }), secret: SECRET, owner: (d) => d.userId });
    const gated = await Promise.all(
      Array.from({ length: count }, async () => {
        const group = new GateGroup();
        groups.push(group);
        const manager = make(await topology.proxied(group));
        await manager.ready();
        return { group, manager };
      }),
    );
    const revoker = make(topology.direct());
    await revoker.ready();
    return { gated, revoker, prefix };
  }

  /** Start a login on `side`, and resolve once it is held at `point` (or has finished without reaching it). */
  async function heldLogin(side: { group: GateGroup; manager: SessionManager<Data> }, userId: string, point: HoldPoint, claim = false) {
    // A claim: an anonymous session (made before the hold) gets its owner without regenerate(); its
    // record is then written by compare-and-set, not created.
    const anonymous = claim ? (await request(side.manager, undefined, (s) => void (s.n = 1))).cookie : undefined;
    if (point === "start") side.group.hold();
    else armed = { operation: claim && point === "create" ? "compareAndSet" : point, group: side.group };
    const pending = claim ? request(side.manager, anonymous, (s) => void (s.userId = userId)) : login(side.manager, userId);
    pending.catch(noop);
    await Promise.race([side.group.whenHeld(), pending]);
    armed = null;
    // Wrapped: an async function returning the promise itself would wait for the login to finish.
    return { login: pending };
  }

  it("held between its index entry and its record while another process logs the owner out everywhere: the login is dead, and its record gone", async () => {
    const { gated, revoker, prefix } = await processes();
    const side = gated[0]!;
    const user = `racer-${prefix}`;
    const { login: pending } = await heldLogin(side, user, "owners.add");
    expect(side.group.holding).toBe(true);
    await revoker.destroyOwnerSessions(user);
    side.group.release();
    const { session, cookie } = await pending;
    expect(cookie).toBeUndefined();
    expect(session.userId).toBeUndefined();
    await nextMillisecond();
    // What the server holds: no session of that owner, no index entry.
    expect(await revoker.listSessions(user)).toEqual([]);
    const raw = topology.raw();
    expect(await raw.zcard(`${prefix}owner:${user}`)).toBe(0);
    // A later login of that owner works.
    const after = await login(revoker, user);
    expect(await alive(side.manager, after.cookie, user)).toBe(true);
  });

  it("held the same way while another process lists the owner's sessions (which prunes), then logs out everywhere: the login is dead", async () => {
    const { gated, revoker, prefix } = await processes();
    const side = gated[0]!;
    const user = `lister-${prefix}`;
    const { login: pending } = await heldLogin(side, user, "owners.add");
    expect(await revoker.listSessions(user)).toEqual([]);
    side.group.release();
    const { cookie } = await pending;
    // The listing took the missing record's key: the login drew another id, indexed it, and succeeded.
    expect(await alive(revoker, cookie, user)).toBe(true);
    expect((await revoker.listSessions(user)).length).toBe(1);
    await revoker.destroyOwnerSessions(user);
    expect(await alive(side.manager, cookie, user)).toBe(false);
    expect(await alive(revoker, cookie, user)).toBe(false);
  });

  it("any interleaving of parallel logins (new sessions, or anonymous ones claimed) in several processes with a listing and a log-out-everywhere leaves none of them alive (randomized)", async () => {
    const { gated, revoker, prefix } = await processes(3);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ process: fc.nat(2), point: fc.constantFrom<HoldPoint>("start", "owners.add", "create"), claim: fc.boolean() }), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.boolean(),
        fc.boolean(),
        fc.func(fc.integer()),
        async (logins, listFirst, releaseBeforeRevoking, order) => {
          const user = `random-${run++}-${prefix}`;
          // One held login per process at a time: a process's gate holds all its traffic.
          const used = new Set<number>();
          const chosen = logins.filter(({ process }) => !used.has(process) && used.add(process));
          const pending = [];
          for (const { process, point, claim } of chosen) {
            // A claim held before its load has not named its owner yet: it does so after the revocation,
            // and outlives it like any later login (its owner time is after the mark). Held at its index
            // entry instead, it names the owner before the revocation.
            const at = claim && point === "start" ? "owners.add" : point;
            pending.push((await heldLogin(gated[process]!, user, at, claim)).login);
          }
          if (listFirst) await revoker.listSessions(user);
          const release = () => {
            const sides = chosen.map(({ process }) => gated[process]!).sort((a, b) => order(gated.indexOf(a)) - order(gated.indexOf(b)));
            for (const side of sides) side.group.release();
          };
          if (releaseBeforeRevoking) {
            release();
            await Promise.allSettled(pending);
            await revoker.destroyOwnerSessions(user);
          } else {
            await revoker.destroyOwnerSessions(user);
            release();
          }
          const results = await Promise.allSettled(pending);
          for (const result of results) {
            if (result.status === "fulfilled") expect(await alive(revoker, result.value.cookie, user)).toBe(false);
          }
          expect(await revoker.listSessions(user)).toEqual([]);
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe("audit on real Redis: a session whose idle TTL ran out is reported with its owner, without keyspace notifications", () => {
  it.each(topologies.slice(0, 2))("on %s, by the next listSessions (once)", async (_label, topology) => {
    const prefix = uniquePrefix("audit");
    const manager = createSessionManager<Data>({ store: new RedisStore({ client: tracked(topology.direct()), prefix }), secret: SECRET, owner: (d) => d.userId });
    const expired: unknown[] = [];
    manager.on("expired", (e) => expired.push(e));
    const { session } = await login(manager, "audited");
    const kept = await login(manager, "audited");
    const raw = topology.raw();
    const key = `${prefix}${manager.storeKeyOf(session.id)}`;
    await raw.pexpire(key, 1); // the idle TTL running out, without waiting a day
    while ((await raw.exists(key)) === 1) await new Promise((resolve) => setImmediate(resolve));
    expect((await manager.listSessions("audited")).map((s) => s.session)).toEqual([manager.hashOf(kept.session.id)]);
    expect(expired).toEqual([{ session: manager.hashOf(session.id), owner: "audited", reason: "idle" }]);
    await manager.listSessions("audited");
    expect(expired.length).toBe(1);
  });
});
