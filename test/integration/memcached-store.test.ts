import { randomUUID } from "node:crypto";
import diagnosticsChannel from "node:diagnostics_channel";
import type { Socket } from "node:net";
import memjs from "memjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createMemcachedClient,
  MEMCACHED_MAX_KEY_BYTES,
  MEMCACHED_MAX_RELATIVE_TTL,
  MemcachedStore,
  MemcachedStoreError,
  memcachedExpiration,
} from "../../adapters/memcached.js";
import { createSessionManager, SessionConfigError, SessionError, StoreUnavailableError, UnsupportedOperationError, type SessionManager, type SessionStore } from "../../src/index.js";
import { services, startMemcached, uniquePrefix, type MemcachedHandle } from "../services/index.js";
import { storeKeysFor } from "../helpers/store-keys.js";
import { countCommands, dedicatedMemcached, holdersOf, serverTtl, ttlOnServers } from "../helpers/memcached-servers.js";

const SECRET = "a-memcached-test-secret-of-at-least-32-chars";
const keyOf = storeKeysFor(SECRET);
const DAY = 86_400;
const RECORD = `{"v":1,"createdAt":1,"expiresAt":2,"writtenAt":1}\n{"a":1}`;
const silent = { log: () => {} };
type Data = Record<string, unknown>;

const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

/** `sid=<signed id>` for a Cookie header, from a Set-Cookie value. */
function cookieOf(setCookie: string | undefined): string {
  expect(setCookie, "a Set-Cookie header").toBeDefined();
  return setCookie!.split(";")[0]!;
}

/** Create a session through the core holding `data`; returns its id and cookie. */
async function newSession(manager: SessionManager, data: Data): Promise<{ id: string; cookie: string }> {
  const session = await manager.load(undefined, { secure: false });
  Object.assign(session, data);
  const { setCookie } = await manager.commit(session);
  return { id: session.id, cookie: cookieOf(setCookie) };
}

/** One request: load the session, optionally change it, commit. */
async function request(manager: SessionManager, cookie: string, change?: (session: Data) => void) {
  const session = await manager.load(cookie, { secure: false });
  change?.(session as unknown as Data);
  await manager.commit(session);
  return session as unknown as Data & { isNew: boolean; id: string };
}

/** Fails with a clear message if `promise` neither resolves nor rejects: a hang, not a slow answer. */
function noHang<T>(promise: Promise<T>, seconds = 15): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`hung: no answer after ${seconds}s`)), seconds * 1000);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe("MemcachedStore: construction and declared capabilities", () => {
  const client = createMemcachedClient("127.0.0.1:1");
  afterAll(() => client.close());

  it("declares compare-and-set (unless turned off) but no listing or owner index, and the core refuses what needs them", async () => {
    for (const [getAndTouch, compareAndSet] of [
      [true, true],
      [false, true],
      [true, false],
    ] as const) {
      const store = new MemcachedStore({ client, getAndTouch, compareAndSet });
      expect(store.capabilities).toEqual({ refreshOnGet: getAndTouch, list: false, compareAndSet, ownerIndex: false });
      const asStore: SessionStore = store;
      expect(asStore.list).toBeUndefined();
      expect(asStore.owners).toBeUndefined();
      expect(typeof asStore.compareAndSet).toBe(compareAndSet ? "function" : "undefined");
      const manager = createSessionManager({ store, secret: SECRET });
      const listing = (async () => {
        for await (const id of manager.listIds()) return id;
      })();
      await expect(listing).rejects.toBeInstanceOf(UnsupportedOperationError);
      await expect(listing).rejects.toThrow("MemcachedStore cannot list sessions");
    }
  });

  it("refuses unusable options at construction with errors that name the adapter", () => {
    expect(() => new MemcachedStore({ client, prefix: "my sess:" })).toThrow(SessionConfigError);
    expect(() => new MemcachedStore({ client, prefix: "sess\n" })).toThrow("MemcachedStore: prefix");
    expect(() => new MemcachedStore({ client, prefix: "p".repeat(MEMCACHED_MAX_KEY_BYTES) })).toThrow("MemcachedStore: prefix is 250 bytes");
    expect(() => new MemcachedStore({ client, timeout: 0 })).toThrow("MemcachedStore: timeout");
    expect(() => new MemcachedStore({ client: {} as never })).toThrow("MemcachedStore: client must be a memjs Client");
    expect(() => createMemcachedClient([])).toThrow(SessionConfigError);
    expect(() => createMemcachedClient("")).toThrow("createMemcachedClient: servers");
    expect(() => createMemcachedClient(["127.0.0.1:11211", "bad host:1"])).toThrow("createMemcachedClient: servers");
    expect(() => createMemcachedClient("127.0.0.1:11211", { retries: -1 })).toThrow("createMemcachedClient: retries");
  });

  it("sends TTLs up to 30 days as seconds and longer ones as absolute Unix time", () => {
    const now = Date.UTC(2030, 0, 1);
    expect(memcachedExpiration(1, now)).toBe(1);
    expect(memcachedExpiration(MEMCACHED_MAX_RELATIVE_TTL, now)).toBe(2_592_000);
    expect(memcachedExpiration(MEMCACHED_MAX_RELATIVE_TTL + 1, now)).toBe(now / 1000 + 2_592_001);
    expect(memcachedExpiration(40 * DAY, now)).toBe(now / 1000 + 40 * DAY);
    // 0 means "never expires" to memcached: never sent.
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => memcachedExpiration(bad, now)).toThrow(MemcachedStoreError);
  });

  it("createMemcachedClient keeps failover off, retries once and silences memjs's console logging", () => {
    const built = createMemcachedClient(["127.0.0.1:11211", "127.0.0.1:11212"]);
    const options = built.options as memjs.ClientOptions & { timeout?: number };
    expect(options.failover).toBe(false);
    expect(options.retries).toBe(2); // memjs counts attempts: the first one plus one retry
    expect(options.logger).not.toBe(console);
    expect(built.servers.map((server) => `${server.host}:${server.port}`)).toEqual(["127.0.0.1:11211", "127.0.0.1:11212"]);
    expect(built.servers[0]!.options).toMatchObject({ timeout: 0.4, conntimeout: 0.4, keepAlive: true });
    built.close();
  });
});

describe("MemcachedStore on the shared servers: what the servers hold", () => {
  let client: memjs.Client;
  let multi: memjs.Client;
  let one: string[];
  let three: string[];

  beforeAll(() => {
    one = services().memcached.servers.map((server) => server.address);
    three = services().memcachedMulti.servers.map((server) => server.address);
    client = createMemcachedClient(one);
    multi = createMemcachedClient(three);
  });
  afterAll(() => {
    client.close();
    multi.close();
  });

  it("a new session is an item with the idle TTL, refreshed by a read and gone after destroy", async () => {
    const store = new MemcachedStore({ client, prefix: uniquePrefix("memcached-ttl") });
    const short = createSessionManager({ store, secret: SECRET, idleTimeout: 300 });
    const { id, cookie } = await newSession(short, { userId: 7 });
    const key = store.prefix + keyOf(id);
    const ttl = await serverTtl(one[0]!, key);
    expect(ttl).toBeGreaterThan(295);
    expect(ttl).toBeLessThanOrEqual(300);

    // Another app with a longer idle timeout reads it: get-and-touch resets the TTL on the server.
    const long = createSessionManager({ store, secret: SECRET, idleTimeout: 900 });
    expect((await request(long, cookie)).userId).toBe(7);
    expect(await serverTtl(one[0]!, key)).toBeGreaterThan(895);

    const session = await long.load(cookie, { secure: false });
    await session.destroy();
    expect(await serverTtl(one[0]!, key)).toBeNull();
    expect((await request(long, cookie)).isNew).toBe(true);
  });

  it("a session is gone from the server after its TTL runs out", async () => {
    const store = new MemcachedStore({ client, prefix: uniquePrefix("memcached-expiry") });
    const manager = createSessionManager({ store, secret: SECRET, idleTimeout: 1 });
    const { id, cookie } = await newSession(manager, { userId: 1 });
    expect(await serverTtl(one[0]!, store.prefix + keyOf(id))).not.toBeNull();
    await sleep(2.5);
    expect(await serverTtl(one[0]!, store.prefix + keyOf(id))).toBeNull();
    expect((await request(manager, cookie)).isNew).toBe(true);
    expect(await store.update(id, RECORD, 60)).toBe(false); // replace never brings it back
    expect(await serverTtl(one[0]!, store.prefix + keyOf(id))).toBeNull();
  });

  it("a TTL of 40 days is stored as a future timestamp, not as an already-expired item", async () => {
    const store = new MemcachedStore({ client, prefix: uniquePrefix("memcached-40d") });
    const near = (ttl: number | null, expected: number) => {
      expect(ttl, "item present on the server").not.toBeNull();
      expect(Math.abs(ttl! - expected)).toBeLessThanOrEqual(5);
    };
    const id = randomUUID();
    const key = store.prefix + id;
    expect(await store.create(id, RECORD, 40 * DAY)).toBe(true);
    near(await serverTtl(one[0]!, key), 40 * DAY);
    expect(await store.get(id)).toBe(RECORD);
    expect(await store.update(id, RECORD, 45 * DAY)).toBe(true);
    near(await serverTtl(one[0]!, key), 45 * DAY);
    expect(await store.touch(id, 50 * DAY)).toBe(true);
    near(await serverTtl(one[0]!, key), 50 * DAY);
    expect(await store.get(id, 55 * DAY)).toBe(RECORD); // get-and-touch
    near(await serverTtl(one[0]!, key), 55 * DAY);
    expect(await store.touch(id, 30 * DAY)).toBe(true); // exactly 30 days: still relative
    near(await serverTtl(one[0]!, key), 30 * DAY);

    // Through the core: idle timeout of 40 days.
    const manager = createSessionManager({ store, secret: SECRET, idleTimeout: 40 * DAY, absoluteTimeout: 90 * DAY });
    const session = await newSession(manager, { userId: 40 });
    near(await serverTtl(one[0]!, store.prefix + keyOf(session.id)), 40 * DAY);
    expect((await request(manager, session.cookie)).userId).toBe(40);
  });

  it("with 3 servers, keys land on every server, each on exactly one", async () => {
    const store = new MemcachedStore({ client: multi, prefix: uniquePrefix("memcached-spread") });
    const manager = createSessionManager({ store, secret: SECRET });
    const perServer = [0, 0, 0];
    for (let i = 0; i < 60; i++) {
      const { id, cookie } = await newSession(manager, { n: i });
      const holders = await holdersOf(three, store.prefix + keyOf(id));
      expect(holders, `servers holding session ${i}`).toHaveLength(1);
      perServer[holders[0]!]! += 1;
      expect((await request(manager, cookie)).n).toBe(i);
    }
    for (const [index, count] of perServer.entries()) expect(count, `sessions on server ${index}`).toBeGreaterThan(0);
  });

  it("a key that breaks memcached's limits is a clear error, never sent", async () => {
    const prefix = uniquePrefix("memcached-keys");
    const store = new MemcachedStore({ client, prefix });
    const fits = "i".repeat(MEMCACHED_MAX_KEY_BYTES - Buffer.byteLength(prefix));
    expect(await store.create(fits, RECORD, 60)).toBe(true);
    expect(await serverTtl(one[0]!, prefix + fits)).not.toBeNull();
    for (const call of [() => store.get(`${fits}x`), () => store.create(`${fits}x`, RECORD, 60), () => store.destroy(`${fits}x`)]) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MemcachedStoreError);
      expect(error).toBeInstanceOf(SessionError);
      expect((error as MemcachedStoreError).code).toBe("ERR_MEMCACHED_KEY");
      expect((error as Error).message).toMatch(/^MemcachedStore: key of 251 bytes .* limit of 250 bytes/);
    }
    for (const bad of ["has space", "tab\there", "nl\nx", "del\u007f"]) {
      await expect(store.create(bad, RECORD, 60)).rejects.toMatchObject({ code: "ERR_MEMCACHED_KEY" });
    }
    // Multi-byte characters count in bytes, not in UTF-16 units.
    const wide = "é".repeat(Math.ceil(fits.length / 2) + 1);
    await expect(store.get(wide)).rejects.toMatchObject({ code: "ERR_MEMCACHED_KEY" });

    // Through the core (its store keys are 32 characters, whatever the id) with a prefix too long for
    // them: the error reaches the app as a StoreUnavailableError whose cause says why.
    const longPrefix = new MemcachedStore({ client, prefix: `${prefix}${"p".repeat(MEMCACHED_MAX_KEY_BYTES - 20 - Buffer.byteLength(prefix))}` });
    const manager = createSessionManager({
      store: longPrefix,
      secret: SECRET,
      genid: () => `g${randomUUID().replaceAll("-", "").repeat(5)}`.slice(0, 190),
      validateId: (id) => id.startsWith("g"),
    });
    const session = await manager.load(undefined, { secure: false });
    (session as unknown as Data).userId = 1;
    const error = await manager.commit(session).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).cause).toMatchObject({ code: "ERR_MEMCACHED_KEY" });
  });

  it("a record over the server's item size limit is a clear error", async () => {
    const store = new MemcachedStore({ client, prefix: uniquePrefix("memcached-big") });
    const error = await store.create(randomUUID(), `${RECORD}${"x".repeat(2 * 1024 * 1024)}`, 60).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MemcachedStoreError);
    expect((error as Error).message).toMatch(/^MemcachedStore: add failed on 127\.0\.0\.1:\d+: value too large/);
  });
});

describe("MemcachedStore: store operations per request, counted on dedicated servers", () => {
  let addresses: string[];
  let client: memjs.Client;
  dedicatedMemcached(3, (servers) => ({ addresses, client } = servers));

  it("getAndTouch: an unchanged session costs exactly one get-and-touch per request", async () => {
    const store = new MemcachedStore({ client, prefix: uniquePrefix("memcached-count-gat") });
    const manager = createSessionManager({ store, secret: SECRET });

    expect(await countCommands(addresses, () => request(manager, ""))).toEqual({}); // no cookie, no data: no store call
    let session!: { id: string; cookie: string };
    expect(await countCommands(addresses, async () => (session = await newSession(manager, { userId: 1 })))).toEqual({ cmd_set: 1 }); // add

    expect(await countCommands(addresses, () => request(manager, session.cookie))).toEqual({ cmd_touch: 1, touch_hits: 1 });
    const many = await countCommands(addresses, async () => {
      for (let i = 0; i < 25; i++) expect((await request(manager, session.cookie)).userId).toBe(1);
    });
    expect(many).toEqual({ cmd_touch: 25, touch_hits: 25 });

    // A change costs the read plus one CAS-replace carrying the token the read returned.
    const changed = await countCommands(addresses, () => request(manager, session.cookie, (s) => (s.userId = 2)));
    expect(changed).toEqual({ cmd_touch: 1, touch_hits: 1, cmd_set: 1, cas_hits: 1 });

    // An unknown (validly signed) id: one miss, then a fresh session.
    const unknown = `sid=${manager.signId(randomUUID())}`;
    expect(await countCommands(addresses, () => request(manager, unknown))).toEqual({ cmd_touch: 1, touch_misses: 1 });

    // Destroy: the read plus one delete.
    const destroyed = await countCommands(addresses, async () => {
      const s = await manager.load(session.cookie, { secure: false });
      await s.destroy();
      await manager.commit(s);
    });
    expect(destroyed).toEqual({ cmd_touch: 1, touch_hits: 1, delete_hits: 1 });
    expect(await ttlOnServers(addresses, store.prefix + keyOf(session.id))).toBeNull();
  });

  it("getAndTouch: false: one get per request, and one rewrite once touchAfter has elapsed", async () => {
    const store = new MemcachedStore({ client, prefix: uniquePrefix("memcached-count-get"), getAndTouch: false });
    const manager = createSessionManager({ store, secret: SECRET, touchAfter: 2 });
    const session = await newSession(manager, { userId: 1 });

    const within = await countCommands(addresses, async () => {
      for (let i = 0; i < 10; i++) await request(manager, session.cookie);
    });
    expect(within).toEqual({ cmd_get: 10, get_hits: 10 });

    await sleep(2.2);
    // The refresh is a write of a loaded session: a CAS-replace with the token the read returned.
    expect(await countCommands(addresses, () => request(manager, session.cookie))).toEqual({ cmd_get: 1, get_hits: 1, cmd_set: 1, cas_hits: 1 });
    expect(await countCommands(addresses, () => request(manager, session.cookie))).toEqual({ cmd_get: 1, get_hits: 1 });
  });

  it("a bad key never reaches a server", async () => {
    const store = new MemcachedStore({ client, prefix: uniquePrefix("memcached-count-key") });
    const counted = await countCommands(addresses, async () => {
      await expect(store.get("x".repeat(300))).rejects.toMatchObject({ code: "ERR_MEMCACHED_KEY" });
      await expect(store.create("a b", RECORD, 60)).rejects.toMatchObject({ code: "ERR_MEMCACHED_KEY" });
      await expect(store.touch(randomUUID(), 0)).rejects.toMatchObject({ code: "ERR_MEMCACHED_TTL" });
    });
    expect(counted).toEqual({});
  });
});

describe("MemcachedStore: one of three servers stopped or paused", () => {
  let handle: MemcachedHandle;
  let addresses: string[];
  let client: memjs.Client;
  let store: MemcachedStore;
  let manager: SessionManager;
  /** Sessions by the index of the server that holds them (read from the servers). */
  const byServer: { id: string; cookie: string; n: number }[][] = [[], [], []];

  beforeAll(async () => {
    handle = await startMemcached(3);
    addresses = handle.servers.map((server) => server.address);
    // Bounds with room for a busy machine: a healthy server must never look hung here.
    client = createMemcachedClient(addresses, { timeout: 1 });
    store = new MemcachedStore({ client, prefix: uniquePrefix("memcached-outage"), timeout: 2.5 });
    manager = createSessionManager({ store, secret: SECRET, storeTimeout: 3 });
    for (let n = 0; byServer.some((list) => list.length < 4); n++) {
      if (n > 300) throw new Error("sessions do not spread over the three servers");
      const { id, cookie } = await newSession(manager, { n });
      const holders = await holdersOf(addresses, store.prefix + keyOf(id));
      expect(holders).toHaveLength(1);
      byServer[holders[0]!]!.push({ id, cookie, n });
    }
  });
  afterAll(async () => {
    client?.close();
    await handle?.close();
  });

  async function expectUnavailable(promise: Promise<unknown>): Promise<StoreUnavailableError> {
    const error = await noHang(promise.then(() => "resolved", (e: unknown) => e));
    expect(error, "the call rejects").toBeInstanceOf(StoreUnavailableError);
    const unavailable = error as StoreUnavailableError;
    expect(unavailable.status).toBe(503);
    expect(unavailable.cause).toBeInstanceOf(MemcachedStoreError);
    expect(unavailable.cause).toBeInstanceOf(SessionError);
    expect((unavailable.cause as Error).message).toMatch(/^MemcachedStore: /);
    return unavailable;
  }

  it("stopped: sessions on the other two keep working, those on the stopped one get 503, and all recover on start", async () => {
    const down = 1;
    await handle.servers[down]!.stop();

    for (const [index, sessions] of byServer.entries()) {
      for (const s of sessions) {
        if (index === down) {
          await expectUnavailable(manager.load(s.cookie, { secure: false }));
          const direct = await noHang(store.get(keyOf(s.id)).catch((e: unknown) => e));
          expect(direct).toMatchObject({ code: "ERR_MEMCACHED_CONNECTION", server: addresses[down] });
          expect((direct as Error).message).toContain(`MemcachedStore: get failed on ${addresses[down]}`);
        } else {
          const session = await noHang(request(manager, s.cookie, (data) => (data.seen = "during-stop")));
          expect(session.isNew).toBe(false);
          expect(session.n).toBe(s.n);
        }
      }
    }
    // New sessions whose id maps to the stopped server fail; the others are created.
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, async () => {
        const session = await manager.load(undefined, { secure: false });
        (session as unknown as Data).fresh = true;
        return noHang(manager.commit(session).then(() => "created", (e: unknown) => e));
      }),
    );
    expect(outcomes.filter((o) => o === "created").length).toBeGreaterThan(0);
    for (const o of outcomes) if (o !== "created") expect(o).toBeInstanceOf(StoreUnavailableError);

    await handle.servers[down]!.start();
    // Stopping lost that server's data: its sessions start afresh (no error); the others kept their change.
    for (const [index, sessions] of byServer.entries()) {
      for (const s of sessions) {
        const session = await request(manager, s.cookie);
        if (index === down) expect(session.isNew).toBe(true);
        else expect(session.seen).toBe("during-stop");
      }
    }
    // The restarted server takes new sessions again.
    const created = [];
    while (created.length < 3) {
      const fresh = await newSession(manager, { again: true });
      if ((await holdersOf(addresses, store.prefix + keyOf(fresh.id)))[0] === down) created.push(fresh);
    }
    for (const fresh of created) expect((await request(manager, fresh.cookie)).again).toBe(true);
    byServer[down] = created.map((c, i) => ({ ...c, n: -1 - i }));
  });

  it("paused (hung): its sessions get 503 through the timeout, the others keep working, all recover on resume", async () => {
    const hung = 2;
    await handle.servers[hung]!.pause();
    try {
      for (const [index, sessions] of byServer.entries()) {
        for (const s of sessions) {
          if (index === hung) await expectUnavailable(manager.load(s.cookie, { secure: false }));
          else expect((await noHang(request(manager, s.cookie))).isNew).toBe(false);
        }
      }
      const direct = await noHang(store.touch(keyOf(byServer[hung]![0]!.id), 60).catch((e: unknown) => e));
      expect(direct).toBeInstanceOf(MemcachedStoreError);
    } finally {
      await handle.servers[hung]!.resume();
    }
    // Pausing loses nothing: the same sessions load with their data.
    for (const s of byServer[hung]!) {
      const session = await request(manager, s.cookie);
      expect(session.isNew).toBe(false);
      expect(session.n).toBe(s.n);
    }
  });

  it("the store's own timeout bounds calls even when memjs's would not fire (steady traffic to a hung server)", async () => {
    const hung = 0;
    // memjs's timeout is an idle timer on the socket: requests every 100 ms keep pushing it back.
    const patient = memjs.Client.create(addresses[hung], { timeout: 60, retries: 1, logger: silent });
    const bounded = new MemcachedStore({ client: patient, prefix: store.prefix, timeout: 0.3 });
    const target = byServer[hung]![0]!;
    expect(await bounded.get(keyOf(target.id))).not.toBeNull();
    await handle.servers[hung]!.pause();
    try {
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 10; i++) {
        calls.push(noHang(bounded.get(keyOf(target.id)).catch((e: unknown) => e)));
        await sleep(0.1);
      }
      for (const outcome of await Promise.all(calls)) expect(outcome).toMatchObject({ code: "ERR_MEMCACHED_TIMEOUT", server: addresses[hung] });
    } finally {
      await handle.servers[hung]!.resume();
    }
    expect(await bounded.get(keyOf(target.id))).not.toBeNull(); // the same connection answers again
    patient.close();
  });
});

describe("MemcachedStore: the first request after a paused server resumes", () => {
  let handle: MemcachedHandle;
  let client: memjs.Client;
  let store: MemcachedStore;

  beforeAll(async () => {
    handle = await startMemcached(1);
    // memjs gives up on a hung attempt (and half-closes its socket) long before the store's own
    // timeout; its one retry opens a socket of its own, which the test watches.
    client = createMemcachedClient(handle.servers[0]!.address, { timeout: 0.3 });
    store = new MemcachedStore({ client, prefix: uniquePrefix("memcached-resume"), timeout: 3 });
  });
  afterAll(async () => {
    client?.close();
    await handle?.close();
  });

  /** What `run` resolves to, and the client sockets the process opened while it ran (here: memjs's). */
  async function withSocketsOpened<T>(run: () => Promise<T>): Promise<{ outcome: T; sockets: Socket[] }> {
    const sockets: Socket[] = [];
    const collect = (message: unknown) => sockets.push((message as { socket: Socket }).socket);
    diagnosticsChannel.subscribe("net.client.socket", collect);
    try {
      return { outcome: await run(), sockets };
    } finally {
      diagnosticsChannel.unsubscribe("net.client.socket", collect);
    }
  }

  // memjs 1.x: a socket it gave up on closes only when the resumed server closes its end, and that
  // late "close" used to clear memjs's newer socket, so the request waiting on it was never sent.
  it("a request started while a stale memjs socket is closing is sent and answered, not lost", async () => {
    const id = randomUUID();
    expect(await store.create(id, RECORD, 60)).toBe(true);
    const server = handle.servers[0]!;
    for (let round = 0; round < 3; round++) {
      await server.pause();
      let first: Promise<{ staleWasClosed: boolean; result: Promise<unknown> }>;
      try {
        const { outcome, sockets } = await withSocketsOpened(() => store.get(id).catch((e: unknown) => e));
        expect(outcome, "memjs gave up on the hung server itself").toMatchObject({ code: "ERR_MEMCACHED_CONNECTION" });
        expect(sockets.length).toBeGreaterThan(0);
        const closed = new Set<Socket>();
        for (const socket of sockets) socket.once("close", () => closed.add(socket));
        // The request starts as the server's FIN reaches a stale socket: its "close" comes after
        // memjs has opened a new socket for the request and before that socket connects.
        first = new Promise((resolve) => {
          let started = false;
          for (const socket of sockets) {
            socket.once("end", () => {
              if (started) return;
              started = true;
              resolve({ staleWasClosed: closed.has(socket), result: store.get(id).catch((e: unknown) => e) });
            });
          }
        });
      } finally {
        await server.resume();
      }
      const { staleWasClosed, result } = await noHang(first);
      expect(staleWasClosed, "the request started before the stale socket's close").toBe(false);
      const answer = await noHang(result);
      expect(answer instanceof Error ? answer.message : answer, `round ${round + 1}: the first request after the resume`).toBe(RECORD);
    }
  });
});
