/**
 * Sessions per owner on real Redis (standalone and a 3-master Cluster): RedisStore's owner index
 * (one sorted set per owner) driven through the core by several manager instances, each with its
 * own ioredis client, as separate app processes would be. Assertions read what the server holds:
 * the members, scores and expiry of each owner's sorted set, the session keys, and command counts.
 */
import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import type { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { storeKeysFor } from "../helpers/store-keys.js";
import { RedisStore, RedisStoreError, createRedisClient } from "../../adapters/redis.js";
import { expressSession } from "../../src/frameworks/express/index.js";
import { createSessionManager, hashId, type Session, type SessionManager, type SessionOptions } from "../../src/index.js";
import { services, startRedis, uniquePrefix, type RedisHandle } from "../services/index.js";
import { closeClients, commandsDuring, rawCluster, rawRedis, storedRecord, tracked } from "../helpers/redis-clients.js";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";
const keyOf = storeKeysFor(SECRET);

type Data = { userId?: string; device?: string; n?: number };
type DataSession = Session<Data> & Data;

afterAll(() => closeClients());

/** The `name=value` pair of a Set-Cookie header, as a browser sends it back. */
function cookiePair(setCookie: string): string {
  return setCookie.split(";")[0]!;
}

/** One app process: its own client, store and manager, on the shared prefix. */
interface Instance {
  readonly manager: SessionManager<Data>;
  readonly store: RedisStore;
}

/** A browser's view of one session: its cookie and the id it names (known to the test only). */
interface Browser {
  cookie: string;
  id: string;
}

function instances(count: number, makeClient: () => Redis | Cluster, prefix: string, options: Partial<SessionOptions<Data>> = {}): Instance[] {
  return Array.from({ length: count }, () => {
    const store = new RedisStore({ client: tracked(makeClient()), prefix });
    const manager = createSessionManager<Data>({
      store,
      secret: SECRET,
      owner: (data) => data.userId,
      ownerMetadata: (data) => ({ device: data.device ?? null }),
      ...options,
    });
    return { manager, store };
  });
}

/** One request: load from the cookie, run `handler`, commit. Returns the session and the cookie the browser holds after. */
async function request(
  { manager }: Instance,
  cookie: string | undefined,
  handler: (session: DataSession) => unknown = () => undefined,
): Promise<{ session: DataSession; cookie: string | undefined }> {
  const session = (await manager.load(cookie, { secure: false })) as DataSession;
  await handler(session);
  const { setCookie } = await manager.commit(session);
  if (setCookie === undefined) return { session, cookie };
  return { session, cookie: /Max-Age=0/.test(setCookie) ? undefined : cookiePair(setCookie) };
}

/** Log in as `userId` on `instance`: regenerate, then name the owner. */
async function login(instance: Instance, userId: string, device: string): Promise<Browser> {
  const { session, cookie } = await request(instance, undefined, async (s) => {
    await s.regenerate();
    s.userId = userId;
    s.device = device;
  });
  expect(cookie).toBeDefined();
  return { cookie: cookie!, id: session.id };
}

/** The members of an owner's sorted set with their scores, as the server holds them. */
async function indexOf(raw: Redis | Cluster, key: string): Promise<Map<string, number>> {
  const flat = await raw.zrange(key, 0, "-1", "WITHSCORES");
  const members = new Map<string, number>();
  for (let i = 0; i < flat.length; i += 2) members.set(flat[i]!, Number(flat[i + 1]));
  return members;
}

/** The session is alive: its cookie loads its data through `instance`. */
async function expectAlive(instance: Instance, browser: Browser, userId: string | undefined): Promise<void> {
  const { session } = await request(instance, browser.cookie);
  expect(session.isNew).toBe(false);
  expect(session.id).toBe(browser.id);
  expect(session.userId).toBe(userId);
}

/** The session is dead: its cookie yields a fresh, empty session through `instance`. */
async function expectDead(instance: Instance, browser: Browser): Promise<void> {
  const { session } = await request(instance, browser.cookie);
  expect(session.isNew).toBe(true);
  expect(session.userId).toBeUndefined();
  expect(session.id).not.toBe(browser.id);
}

/** `PEXPIRETIME key` (Redis 7): the Unix ms at which the key expires; -1 without expiry, -2 when absent. */
async function expireTime(raw: Redis | Cluster, key: string): Promise<number> {
  return Number(await raw.call("PEXPIRETIME", key));
}

/** Port of the master serving each key of `keys` on a Cluster, from `CLUSTER KEYSLOT` and `CLUSTER SLOTS`. */
async function mastersOf(raw: Cluster, keys: string[]): Promise<number[]> {
  const ranges = (await raw.cluster("SLOTS")) as unknown as [number, number, [string, number, ...unknown[]], ...unknown[]][];
  return Promise.all(
    keys.map(async (key) => {
      const slot = Number(await raw.cluster("KEYSLOT", key));
      const range = ranges.find(([from, to]) => slot >= from && slot <= to);
      if (range === undefined) throw new Error(`no master serves slot ${slot}`);
      return range[2][1];
    }),
  );
}

const topologies = [
  ["a standalone server", () => createRedisClient(services().redis.url), () => rawRedis(services().redis.url)],
  ["a 3-master Cluster", () => createRedisClient({ clusterNodes: services().redisCluster.nodes }), () => rawCluster(services().redisCluster.nodes)],
] as const;

describe.each(topologies)("sessions per owner on %s", (label, makeClient, makeRaw) => {
  const cluster = label.includes("Cluster");
  let raw: Redis | Cluster;
  beforeAll(async () => {
    raw = makeRaw();
    await raw.ping(); // connect, so a Cluster client knows its masters
  });

  /** Owner ids: on a Cluster, two whose index lands on each master; elsewhere any six. */
  async function pickOwners(prefix: string): Promise<string[]> {
    if (!cluster) return Array.from({ length: 6 }, (_, i) => `user-${i}`);
    const perMaster = new Map<number, string[]>();
    for (let i = 0; perMaster.size < 3 || [...perMaster.values()].some((owners) => owners.length < 2); i++) {
      if (i > 1000) throw new Error("could not spread owners over three masters");
      const owner = `user-${i}`;
      const [port] = await mastersOf(raw as Cluster, [`${prefix}owner:${owner}`]);
      const owners = perMaster.get(port!) ?? [];
      if (owners.length < 2) perMaster.set(port!, [...owners, owner]);
    }
    return [...perMaster.values()].flat();
  }

  it("lists exactly each owner's live sessions, whichever process wrote or asks", async () => {
    const prefix = uniquePrefix("redis-owners-list");
    const apps = instances(3, makeClient, prefix);
    const owners = await pickOwners(prefix);
    // Four sessions per owner, logged in concurrently, round-robin over the processes.
    const logins = owners.flatMap((owner) => Array.from({ length: 4 }, (_, n) => ({ owner, device: `device-${n}` })));
    const browsers = await Promise.all(logins.map(({ owner, device }, i) => login(apps[i % apps.length]!, owner, device)));
    const anonymous = await request(apps[0]!, undefined, (s) => {
      s.n = 1; // a session without an owner: in no index
    });
    const byOwner = new Map(owners.map((owner) => [owner, browsers.filter((_, i) => logins[i]!.owner === owner)]));

    for (const [owner, own] of byOwner) {
      // What the server holds: one sorted set per owner, members = store keys (never ids), scores = absolute deadlines.
      const members = await indexOf(raw, `${prefix}owner:${owner}`);
      expect([...members.keys()].sort()).toEqual(own.map((b) => keyOf(b.id)).sort());
      for (const { id } of own) {
        const meta = JSON.parse((await storedRecord(raw, `${prefix}${keyOf(id)}`))!.split("\n")[0]!) as { expiresAt: number; owner: string };
        expect(meta.owner).toBe(owner);
        expect(members.get(keyOf(id))).toBe(meta.expiresAt);
      }
      // The set expires at its latest deadline: it never outlives its sessions.
      expect(await expireTime(raw, `${prefix}owner:${owner}`)).toBe(Math.max(...members.values()));
      // Every process lists the same sessions: hashed ids, creation order, metadata, the current one marked.
      for (const app of apps) {
        const current = await app.manager.load(own[1]!.cookie, { secure: false });
        const listed = await app.manager.listSessions(owner, { current });
        expect(listed.map((s) => s.session).sort()).toEqual(own.map((b) => hashId(keyOf(b.id))).sort());
        expect(listed.filter((s) => s.current).map((s) => s.session)).toEqual([hashId(keyOf(own[1]!.id))]);
        expect(listed.map((s) => s.metadata?.device).sort()).toEqual(["device-0", "device-1", "device-2", "device-3"]);
        for (const s of listed) {
          expect(s.expiresAt).toBe(members.get(keyOf(own.find((b) => hashId(keyOf(b.id)) === s.session)!.id)));
          expect(s.createdAt).toBeLessThanOrEqual(s.lastActiveAt);
        }
      }
    }
    expect(await apps[1]!.manager.listSessions("nobody")).toEqual([]);

    // listIds() yields store keys only: the owner sets live under the same prefix but are never keys.
    const listed: string[] = [];
    for await (const id of apps[2]!.manager.listIds()) listed.push(id);
    expect(listed.sort()).toEqual([...browsers.map((b) => keyOf(b.id)), keyOf(anonymous.session.id)].sort());

    if (cluster) {
      // Owner sets and sessions both spread over the masters; each command touched one key.
      const ownerMasters = await mastersOf(raw as Cluster, owners.map((owner) => `${prefix}owner:${owner}`));
      const sessionMasters = await mastersOf(raw as Cluster, browsers.map((b) => `${prefix}${keyOf(b.id)}`));
      expect(new Set(ownerMasters).size).toBe(3);
      expect(new Set(sessionMasters).size).toBe(3);
    }
  });

  it("log out everywhere except here: the others are dead on their next request in every process; other owners untouched", async () => {
    const prefix = uniquePrefix("redis-owners-revoke");
    const apps = instances(3, makeClient, prefix);
    const [alice, bob] = (await pickOwners(prefix)).filter((_, i) => i % 2 === 0); // on a Cluster, two different masters
    const aliceBrowsers = await Promise.all(Array.from({ length: 6 }, (_, i) => login(apps[i % 3]!, alice!, `a-${i}`)));
    const bobBrowsers = await Promise.all(Array.from({ length: 3 }, (_, i) => login(apps[i % 3]!, bob!, `b-${i}`)));
    const here = aliceBrowsers[2]!;

    // Process 1 serves the "log out everywhere else" request of browser `here`.
    let revoked = -1;
    const answered = await request(apps[1]!, here.cookie, async (session) => {
      revoked = await apps[1]!.manager.destroyOwnerSessions(alice!, { except: session });
    });
    expect(revoked).toBe(5);
    expect(answered.session.id).toBe(here.id);

    // The index and the server: only the current session is left for alice.
    expect([...(await indexOf(raw, `${prefix}owner:${alice}`)).keys()]).toEqual([keyOf(here.id)]);
    for (const browser of aliceBrowsers) expect(await raw.exists(`${prefix}${keyOf(browser.id)}`)).toBe(browser === here ? 1 : 0);

    // Each revoked browser's very next request, through every process: a fresh empty session.
    for (const browser of aliceBrowsers.filter((b) => b !== here)) {
      for (const app of apps) await expectDead(app, browser);
    }
    for (const app of apps) await expectAlive(app, here, alice!);
    for (const browser of bobBrowsers) for (const app of apps) await expectAlive(app, browser, bob!);
    expect((await apps[2]!.manager.listSessions(bob!)).map((s) => s.session).sort()).toEqual(bobBrowsers.map((b) => hashId(keyOf(b.id))).sort());
    expect((await apps[0]!.manager.listSessions(alice!)).map((s) => s.session)).toEqual([hashId(keyOf(here.id))]);

    // And all of them, from yet another process: the current one goes too.
    expect(await apps[2]!.manager.destroyOwnerSessions(alice!)).toBe(1);
    for (const app of apps) await expectDead(app, here);
    expect(await raw.exists(`${prefix}owner:${alice}`)).toBe(0);

    // One session by the hash listSessions shows ("sign out that device").
    const [first, ...rest] = bobBrowsers;
    expect(await apps[0]!.manager.destroyOwnerSession(bob!, hashId(keyOf(first!.id)))).toBe(true);
    expect(await apps[0]!.manager.destroyOwnerSession(bob!, hashId(keyOf(first!.id)))).toBe(false);
    await expectDead(apps[1]!, first!);
    for (const browser of rest) await expectAlive(apps[2]!, browser, bob!);
  });

  it("regenerate() moves the entry to the new id; an owner change and logout move it out", async () => {
    const prefix = uniquePrefix("redis-owners-move");
    const apps = instances(2, makeClient, prefix);
    const [alice, bob] = (await pickOwners(prefix)).filter((_, i) => i % 2 === 0);
    const aliceKey = `${prefix}owner:${alice}`;
    const bobKey = `${prefix}owner:${bob}`;
    const first = await login(apps[0]!, alice!, "laptop");
    expect([...(await indexOf(raw, aliceKey)).keys()]).toEqual([keyOf(first.id)]);

    // Regenerate in another process (say, a privilege change): data kept, new id, the index follows.
    const regenerated = await request(apps[1]!, first.cookie, (s) => s.regenerate(Object.keys(s)));
    const second: Browser = { cookie: regenerated.cookie!, id: regenerated.session.id };
    expect(second.id).not.toBe(first.id);
    expect([...(await indexOf(raw, aliceKey)).keys()]).toEqual([keyOf(second.id)]);
    expect((await apps[0]!.manager.listSessions(alice!)).map((s) => s.session)).toEqual([hashId(keyOf(second.id))]);
    await expectDead(apps[0]!, first);
    await expectAlive(apps[0]!, second, alice!);

    // The same session now belongs to bob: it leaves alice's index and joins bob's.
    await request(apps[0]!, second.cookie, (s) => {
      s.userId = bob!;
    });
    expect(await raw.exists(aliceKey)).toBe(0); // its last member gone, the set went with it
    expect([...(await indexOf(raw, bobKey)).keys()]).toEqual([keyOf(second.id)]);
    expect(await apps[1]!.manager.listSessions(alice!)).toEqual([]);
    expect((await apps[1]!.manager.listSessions(bob!)).map((s) => s.session)).toEqual([hashId(keyOf(second.id))]);

    // Logging out without destroying (the owner is removed from the data): out of every index.
    await request(apps[1]!, second.cookie, (s) => {
      delete s.userId;
    });
    expect(await raw.exists(bobKey)).toBe(0);
    await expectAlive(apps[0]!, second, undefined);

    // Back in, then destroy(): the record and the entry go.
    await request(apps[0]!, second.cookie, (s) => {
      s.userId = bob!;
    });
    expect([...(await indexOf(raw, bobKey)).keys()]).toEqual([keyOf(second.id)]);
    await request(apps[1]!, second.cookie, (s) => s.destroy());
    expect(await raw.exists(bobKey)).toBe(0);
    expect(await raw.exists(`${prefix}${keyOf(second.id)}`)).toBe(0);
  });

  it("expiry prunes the index: idle-expired sessions drop out of listings, and the set expires at the last absolute deadline", async () => {
    const prefix = uniquePrefix("redis-owners-expiry");
    const [owner] = await pickOwners(prefix);
    const key = `${prefix}owner:${owner}`;
    // Idle expiry: the sessions' keys go after 1 s of inactivity; their entries stay until listed.
    const [idle] = instances(1, makeClient, prefix, { idleTimeout: 1, absoluteTimeout: 3600 });
    const idleBrowsers = await Promise.all([login(idle!, owner!, "a"), login(idle!, owner!, "b")]);
    expect((await indexOf(raw, key)).size).toBe(2);
    for (const b of idleBrowsers) await vi.waitFor(async () => expect(await raw.exists(`${prefix}${keyOf(b.id)}`)).toBe(0), { timeout: 15_000, interval: 200 });
    expect((await indexOf(raw, key)).size).toBe(2); // nothing ran yet to prune them
    expect(await idle!.manager.listSessions(owner!)).toEqual([]);
    expect(await raw.exists(key)).toBe(0); // listing removed both stale members, and the empty set with them

    // Absolute expiry: a 2 s deadline. The set's expiry is the latest deadline, to the millisecond.
    const [short] = instances(1, makeClient, prefix, { idleTimeout: 2, absoluteTimeout: 2 });
    const [long] = instances(1, makeClient, prefix, { idleTimeout: 3600, absoluteTimeout: 3600 });
    const shortBrowsers = await Promise.all([login(short!, owner!, "s1"), login(short!, owner!, "s2")]);
    const shortDeadlines = [...(await indexOf(raw, key)).values()];
    expect(await expireTime(raw, key)).toBe(Math.max(...shortDeadlines));
    await vi.waitFor(async () => expect(await raw.exists(key)).toBe(0), { timeout: 15_000, interval: 200 });
    for (const b of shortBrowsers) expect(await raw.exists(`${prefix}${keyOf(b.id)}`)).toBe(0);
    expect(await short!.manager.listSessions(owner!)).toEqual([]);

    // A stale member next to a live one: the next add prunes it, and entries() prunes as it reads.
    const doomed = await login(short!, owner!, "doomed");
    const kept = await login(long!, owner!, "kept");
    const members = await indexOf(raw, key);
    expect([...members.keys()]).toEqual([keyOf(doomed.id), keyOf(kept.id)]); // sorted by deadline
    expect(await expireTime(raw, key)).toBe(members.get(keyOf(kept.id))); // the later deadline wins
    const doomedDeadline = members.get(keyOf(doomed.id))!;
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(doomedDeadline + 50), { timeout: 15_000, interval: 100 });
    expect((await indexOf(raw, key)).has(keyOf(doomed.id))).toBe(true); // stale, still held: pruning is lazy
    const fresh = await login(long!, owner!, "fresh");
    expect([...(await indexOf(raw, key)).keys()].sort()).toEqual([keyOf(kept.id), keyOf(fresh.id)].sort());
    expect((await long!.store.owners.entries(owner!)).map((e) => e.id).sort()).toEqual([keyOf(kept.id), keyOf(fresh.id)].sort());
    const stale = await login(short!, owner!, "stale-soon");
    const staleDeadline = (await indexOf(raw, key)).get(keyOf(stale.id))!;
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(staleDeadline + 50), { timeout: 15_000, interval: 100 });
    expect((await indexOf(raw, key)).has(keyOf(stale.id))).toBe(true);
    expect((await long!.store.owners.entries(owner!)).map((e) => e.id).sort()).toEqual([keyOf(kept.id), keyOf(fresh.id)].sort());
    expect((await indexOf(raw, key)).has(keyOf(stale.id))).toBe(false); // entries() removed it on the server
  });
});

describe("RedisStore owner index: keys and arguments", () => {
  let raw: Redis;
  let store: RedisStore;
  const prefix = uniquePrefix("redis-owners-keys");
  beforeAll(() => {
    raw = rawRedis(services().redis.url);
    store = new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix });
  });

  it("declares the owner index, so the owner option is accepted", () => {
    expect(store.capabilities.ownerIndex).toBe(true);
    expect(() => createSessionManager<Data>({ store, secret: SECRET, owner: (d) => d.userId })).not.toThrow();
  });

  it("percent-encodes { } and % in owner ids: no owner picks its Cluster slot, distinct owners keep distinct keys", async () => {
    const later = Date.now() + 60_000;
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    await store.owners.add("{tag}x", ids[0]!, later);
    await store.owners.add("%7Btag%7Dx", ids[1]!, later);
    await store.owners.add("mail@example.com: ü", ids[2]!, later);
    expect(await raw.zrange(`${prefix}owner:%7Btag%7Dx`, 0, "-1")).toEqual([ids[0]]);
    expect(await raw.zrange(`${prefix}owner:%257Btag%257Dx`, 0, "-1")).toEqual([ids[1]]);
    expect(await raw.zrange(`${prefix}owner:mail@example.com: ü`, 0, "-1")).toEqual([ids[2]]);
    expect((await store.owners.entries("{tag}x")).map((e) => e.id)).toEqual([ids[0]]);
    expect((await store.owners.entries("%7Btag%7Dx")).map((e) => e.id)).toEqual([ids[1]]);
  });

  it("refuses bad owner ids, deadlines and session ids in the index namespace before sending anything", async () => {
    const later = Date.now() + 60_000;
    await expect(store.owners.add("", randomUUID(), later)).rejects.toMatchObject({ code: "ERR_REDIS_ARGUMENT", operation: "owners.add" });
    await expect(store.owners.entries("x".repeat(1025))).rejects.toBeInstanceOf(RedisStoreError);
    await expect(store.owners.add("u", randomUUID(), 1.5)).rejects.toMatchObject({ code: "ERR_REDIS_ARGUMENT" });
    await expect(store.owners.add("u", "owner:u", later)).rejects.toMatchObject({ code: "ERR_REDIS_ARGUMENT" });
    await expect(store.create("owner:u", "x", 60)).rejects.toThrow(/session ids may not start with "owner:"/);
    await expect(store.get("owner:u", 60)).rejects.toMatchObject({ code: "ERR_REDIS_ARGUMENT", operation: "get" });
    expect(await raw.exists(`${prefix}owner:u`)).toBe(0);
  });
});

describe("RedisStore owner index: what it costs per request (dedicated server)", () => {
  let server: RedisHandle;
  let admin: Redis;
  let app: Instance | undefined;

  beforeAll(async () => {
    server = await startRedis();
    admin = rawRedis(server.url);
    [app] = instances(1, () => createRedisClient(server.url), "sess:");
    // Load both scripts and open the connection outside the measurements.
    const warm = await login(app!, "warm-up", "x");
    await request(app!, warm.cookie, (s) => {
      s.n = 0; // the compare-and-set script
    });
    await app!.store.owners.entries("warm-up");
  });
  afterAll(async () => {
    await server?.close();
  });

  it("writes the index only when the owner changes: at login and logout, not on other requests", async () => {
    let browser: Browser | undefined;
    // Login: the new session's SET plus one script on the owner's set (its commands are counted too).
    const atLogin = await commandsDuring(admin, async () => {
      browser = await login(app!, "u1", "phone");
    });
    // ... and one GET of the owner's revocation mark once the record landed (#19).
    expect(atLogin).toEqual({ evalsha: 1, zadd: 1, zremrangebyscore: 1, zrange: 1, pexpireat: 1, zcard: 1, set: 1, get: 1 });
    // A read in the first 30 s after the login also reads the owner's mark (a login racing a revocation is caught there).
    expect(await commandsDuring(admin, () => request(app!, browser!.cookie))).toEqual({ getex: 1, get: 1 });
    // After that, a request that reads the session: one GETEX, no index command.
    vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
    vi.setSystemTime(Date.now() + 30_000);
    expect(await commandsDuring(admin, () => request(app!, browser!.cookie))).toEqual({ getex: 1 });
    // A request that changes data but not the owner: the usual GETEX + compare-and-set, no index command.
    const change = await commandsDuring(admin, () =>
      request(app!, browser!.cookie, (s) => {
        s.n = 1;
      }),
    );
    expect(change).toEqual({ getex: 1, evalsha: 1, getrange: 1, set: 1 });
    // Logout by removing the owner: compare-and-set, then one ZREM.
    const atLogout = await commandsDuring(admin, () =>
      request(app!, browser!.cookie, (s) => {
        delete s.userId;
      }),
    );
    expect(atLogout).toEqual({ getex: 1, evalsha: 1, getrange: 1, set: 1, zrem: 1 });
    vi.useRealTimers();
  });

  it("listing costs one script on the set plus a GET and a TTL per session; revoking a mark (SET) plus a DEL and a ZREM per session", async () => {
    const browsers = await Promise.all([login(app!, "u2", "a"), login(app!, "u2", "b"), login(app!, "u2", "c")]);
    const listing = await commandsDuring(admin, () => app!.manager.listSessions("u2"));
    expect(listing).toEqual({ evalsha: 1, zremrangebyscore: 1, zrange: 1, get: 3, ttl: 3 });
    const current = await app!.manager.load(browsers[0]!.cookie, { secure: false });
    const revoking = await commandsDuring(admin, () => app!.manager.destroyOwnerSessions("u2", { except: current }));
    // #19: the kept session is rewritten with its owner time moved past the mark (compare-and-set: a
    // script, GETRANGE of its version tag, SET), the owner's revocation mark is set (one SET NX), then the index is read.
    expect(revoking).toEqual({ evalsha: 2, getrange: 1, set: 2, zremrangebyscore: 1, zrange: 1, del: 2, zrem: 2 });
    // Raising an existing mark: its SET NX fails, a GET reads it, a compare-and-set raises it. A mark
    // is not a session record, so it carries no version tag and is compared whole: the whole-record
    // script is first used on this server here, so its EVALSHA misses once and EVAL loads it.
    const again = await commandsDuring(admin, () => app!.manager.destroyOwnerSessions("u2"));
    expect(again).toEqual({ set: 2, get: 2, evalsha: 2, eval: 1, zremrangebyscore: 1, zrange: 1, del: 1, zrem: 1 });
  });
});

describe("log out everywhere through Express, as the README shows it (two app instances on a Cluster)", () => {
  const prefix = uniquePrefix("redis-owners-express");
  const servers: Server[] = [];
  const urls: string[] = [];
  /** Event counts per app instance, fed by `manager.on`, as a metrics exporter would be. */
  const counters: Map<string, number>[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const sessions = expressSession<Data>({
        store: new RedisStore({ client: tracked(createRedisClient({ clusterNodes: services().redisCluster.nodes })), prefix }),
        secret: SECRET,
        owner: (data) => data.userId,
        ownerMetadata: (data) => ({ device: data.device ?? null }),
      });
      const counts = new Map<string, number>();
      const inc = (name: string) => counts.set(name, (counts.get(name) ?? 0) + 1);
      sessions.manager.on("created", () => inc("created"));
      sessions.manager.on("destroyed", () => inc("destroyed"));
      sessions.manager.on("rejected", ({ reason }) => inc(`rejected:${reason}`));
      counters.push(counts);

      const app = express();
      app.use(sessions);
      app.use(express.urlencoded({ extended: false }));
      const session = (req: express.Request) => req.session as unknown as DataSession;
      app.post("/login", async (req, res) => {
        await session(req).regenerate();
        session(req).userId = String((req.body as { user?: unknown }).user);
        session(req).device = String(req.get("user-agent") ?? "").slice(0, 80);
        res.sendStatus(204);
      });
      app.get("/account/sessions", async (req, res) => {
        const userId = session(req).userId;
        if (userId === undefined) {
          res.sendStatus(401);
          return;
        }
        res.json(await sessions.manager.listSessions(userId, { current: req.session }));
      });
      app.post("/account/logout-others", async (req, res) => {
        const userId = session(req).userId;
        if (userId === undefined) {
          res.sendStatus(401);
          return;
        }
        res.json({ signedOut: await sessions.manager.destroyOwnerSessions(userId, { except: req.session }) });
      });
      const server = await new Promise<Server>((resolve) => {
        const listening = app.listen(0, "127.0.0.1", () => resolve(listening));
      });
      servers.push(server);
      urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    }
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  });

  /** A browser whose requests carry `userAgent`: keeps the session cookie, answers parsed. */
  function device(userAgent: string) {
    let cookie: string | undefined;
    return {
      async send(base: string, method: "GET" | "POST", path: string, form?: Record<string, string>): Promise<{ status: number; body: unknown }> {
        const headers: Record<string, string> = { "user-agent": userAgent };
        if (cookie !== undefined) headers.cookie = cookie;
        if (form) headers["content-type"] = "application/x-www-form-urlencoded";
        const body = form ? new URLSearchParams(form).toString() : method === "POST" ? "" : undefined;
        const response = await fetch(new URL(path, base), { method, headers, body });
        for (const line of response.headers.getSetCookie()) cookie = /Max-Age=0/i.test(line) ? undefined : line.split(";")[0];
        const text = await response.text();
        return { status: response.status, body: /^[[{]/.test(text) ? (JSON.parse(text) as unknown) : text };
      },
    };
  }

  it("lists a user's devices and signs out the others, whichever instance serves each request", async () => {
    const owner = `user-${randomUUID()}`;
    const phone = device("Phone/1.0");
    const laptop = device("Laptop/2.0");
    const other = device("Other/3.0");
    expect((await phone.send(urls[0]!, "POST", "/login", { user: owner })).status).toBe(204);
    expect((await laptop.send(urls[1]!, "POST", "/login", { user: owner })).status).toBe(204);
    expect((await other.send(urls[0]!, "POST", "/login", { user: `${owner}-other` })).status).toBe(204);

    const listed = (await laptop.send(urls[0]!, "GET", "/account/sessions")).body as { current: boolean; metadata: { device: string } }[];
    expect(listed.map((s) => [s.metadata.device, s.current])).toEqual([
      ["Phone/1.0", false],
      ["Laptop/2.0", true],
    ]);
    expect(await laptop.send(urls[1]!, "POST", "/account/logout-others")).toEqual({ status: 200, body: { signedOut: 1 } });
    // The phone's very next request, on the other instance: no session any more.
    expect((await phone.send(urls[0]!, "GET", "/account/sessions")).status).toBe(401);
    expect((await laptop.send(urls[0]!, "GET", "/account/sessions")).status).toBe(200);
    expect((await other.send(urls[1]!, "GET", "/account/sessions")).status).toBe(200);
    // Each instance's events, as its metrics would count them.
    expect(Object.fromEntries(counters[0]!)).toEqual({ created: 2, "rejected:unknown": 1 });
    expect(Object.fromEntries(counters[1]!)).toEqual({ created: 1, destroyed: 1 });
  });
});
