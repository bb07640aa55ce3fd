/**
 * MemcachedStore compare-and-set (binary get with its CAS token, then a replace carrying it) on real
 * servers: the store's answers when someone writes or deletes between its two round trips, and
 * through the session manager, parallel requests that never lose each other's keys and slow requests
 * that never bring back a destroyed or regenerated session.
 */
import { randomUUID } from "node:crypto";
import type memjs from "memjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storeKeysFor } from "../helpers/store-keys.js";
import { createMemcachedClient, MemcachedStore, MemcachedStoreError, type MemjsClientLike, type MemjsResponse } from "../../adapters/memcached.js";
import { createSessionManager, decodeRecord, SessionConfigError, type SessionManager } from "../../src/index.js";
import { services, uniquePrefix } from "../services/index.js";
import { countCommands, dedicatedMemcached, ttlOnServers } from "../helpers/memcached-servers.js";

const SECRET = "a-memcached-cas-test-secret-of-32-chars-or-more";
const keyOf = storeKeysFor(SECRET);
const DAY = 86_400;
type Data = Record<string, unknown>;
type Loaded = Awaited<ReturnType<SessionManager["load"]>>;

const OP_GET = 0x00;
const OP_REPLACE = 0x03;

function record(label: string): string {
  return `{"v":1,"createdAt":1,"expiresAt":2,"writtenAt":1}\n${JSON.stringify({ label, nonce: randomUUID() })}`;
}

/** `sid=<signed id>` for a Cookie header, from a Set-Cookie value. */
function cookieOf(setCookie: string | undefined): string {
  expect(setCookie, "a Set-Cookie header").toBeDefined();
  return setCookie!.split(";")[0]!;
}

async function newSession(manager: SessionManager, data: Data): Promise<{ id: string; cookie: string }> {
  const session = await manager.load(undefined, { secure: false });
  Object.assign(session, data);
  const { setCookie } = await manager.commit(session);
  return { id: session.id, cookie: cookieOf(setCookie) };
}

const load = (manager: SessionManager, cookie: string) => manager.load(cookie, { secure: false });
const dataOf = (session: Loaded) => session as unknown as Data;

/** The session data a server holds for `id`, parsed from the raw record; `null` when absent. Fails on a corrupt record. */
async function storedData(store: MemcachedStore, id: string): Promise<Data | null> {
  const raw = await store.get(keyOf(id));
  if (raw === null) return null;
  const decoded = decodeRecord(raw);
  expect(decoded, `a valid record for ${id}`).not.toBeNull();
  const data: unknown = JSON.parse(decoded!.dataText);
  expect(typeof data === "object" && data !== null && !Array.isArray(data), "record data is an object").toBe(true);
  return data as Data;
}

const isCasReplace = (request: Buffer) => request[1] === OP_REPLACE && request.subarray(16, 24).some((byte) => byte !== 0);

/**
 * A memjs client that forwards everything to a real one, but can run `beforeCasReplace` (awaited)
 * before a CAS-carrying replace leaves, so a test can act exactly between the store's read and its
 * write; and can blank the CAS token of get answers, as a server started with `-C` does.
 */
class Interposer implements MemjsClientLike {
  beforeCasReplace: ((key: string) => Promise<void>) | undefined;
  blankCas = false;
  casReplaces = 0;

  constructor(readonly inner: MemjsClientLike) {}

  get seq(): number {
    return this.inner.seq;
  }

  incrSeq(): void {
    this.inner.incrSeq();
  }

  server(key: string) {
    return this.inner.server(key);
  }

  perform(key: string, request: Buffer, seq: number, callback?: (err: Error | null, response?: MemjsResponse | null) => void, retries?: number): void {
    let answer = callback;
    if (this.blankCas && request[1] === OP_GET && callback) {
      answer = (err, response) => callback(err, response ? { ...response, header: { ...response.header, cas: Buffer.alloc(8) } } : response);
    }
    const hook = this.beforeCasReplace;
    if (isCasReplace(request)) {
      this.casReplaces += 1;
      if (hook) {
        hook(key).then(
          () => this.inner.perform(key, request, seq, answer, retries),
          (err: unknown) => answer?.(err instanceof Error ? err : new Error(String(err)), null),
        );
        return;
      }
    }
    this.inner.perform(key, request, seq, answer, retries);
  }
}

/** Resolves once `predicate()` holds, polling (no time assertion: a generous cap only turns a hang into a failure). */
async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`never happened: ${what}`);
}

describe("MemcachedStore compareAndSet: option and capability", () => {
  const client = createMemcachedClient("127.0.0.1:1");
  afterAll(() => client.close());

  it("is on by default, off with compareAndSet: false (method absent), and checks the option", () => {
    const on = new MemcachedStore({ client });
    expect(on.capabilities.compareAndSet).toBe(true);
    expect(typeof on.compareAndSet).toBe("function");
    const off = new MemcachedStore({ client, compareAndSet: false });
    expect(off.capabilities.compareAndSet).toBe(false);
    expect(off.compareAndSet).toBeUndefined();
    expect(() => new MemcachedStore({ client, compareAndSet: "yes" as never })).toThrow(SessionConfigError);
    expect(() => new MemcachedStore({ client, compareAndSet: "yes" as never })).toThrow("MemcachedStore: compareAndSet must be a boolean");
  });
});

for (const topology of ["1 server", "3 servers"] as const) {
  describe(`MemcachedStore compareAndSet on ${topology}`, () => {
    let addresses: string[];
    let client: memjs.Client;
    /** A second client: "another process" that writes in between. */
    let other: memjs.Client;

    beforeAll(() => {
      const shared = topology === "1 server" ? services().memcached : services().memcachedMulti;
      addresses = shared.servers.map((server) => server.address);
      client = createMemcachedClient(addresses);
      other = createMemcachedClient(addresses);
    });
    afterAll(() => {
      client.close();
      other.close();
    });

    describe("the store, with a write or delete between its read and its CAS-replace", () => {
      it("someone else's write in between: conflict with their record, which stays", async () => {
        const interposer = new Interposer(client);
        const store = new MemcachedStore({ client: interposer, prefix: uniquePrefix("memcached-cas-between") });
        const elsewhere = new MemcachedStore({ client: other, prefix: store.prefix });
        const id = randomUUID();
        const [base, theirs, mine] = [record("base"), record("theirs"), record("mine")];
        await store.create(id, base, 60);
        interposer.beforeCasReplace = async () => {
          interposer.beforeCasReplace = undefined;
          expect(await elsewhere.update(id, theirs, 60)).toBe(true);
        };
        expect(await store.compareAndSet!(id, base, mine, 60)).toMatchObject({ status: "conflict", current: theirs });
        expect(interposer.casReplaces).toBe(1); // the CAS-replace was sent, and refused
        expect(await store.get(id)).toBe(theirs);
        // Against what is there now, the write goes through.
        expect(await store.compareAndSet!(id, theirs, mine, 60)).toMatchObject({ status: "written" });
        expect(await store.get(id)).toBe(mine);
      });

      it("a delete in between: missing, and nothing is written back", async () => {
        const interposer = new Interposer(client);
        const store = new MemcachedStore({ client: interposer, prefix: uniquePrefix("memcached-cas-deleted") });
        const elsewhere = new MemcachedStore({ client: other, prefix: store.prefix });
        const id = randomUUID();
        const base = record("base");
        await store.create(id, base, 60);
        interposer.beforeCasReplace = () => elsewhere.destroy(id);
        expect(await store.compareAndSet!(id, base, record("resurrected"), 60)).toEqual({ status: "missing" });
        expect(interposer.casReplaces).toBe(1);
        expect(await ttlOnServers(addresses, store.prefix + id)).toBeNull();
      });

      it("deleted and created again with the same bytes in between: a new CAS token, so it reads again, then writes", async () => {
        const interposer = new Interposer(client);
        const store = new MemcachedStore({ client: interposer, prefix: uniquePrefix("memcached-cas-recreated") });
        const elsewhere = new MemcachedStore({ client: other, prefix: store.prefix });
        const id = randomUUID();
        const base = record("base");
        await store.create(id, base, 60);
        interposer.beforeCasReplace = async () => {
          interposer.beforeCasReplace = undefined;
          await elsewhere.destroy(id);
          expect(await elsewhere.create(id, base, 60)).toBe(true); // the same bytes, but a new item
        };
        // The value still matches, so the store reads again and writes against the new token.
        expect(await store.compareAndSet!(id, base, record("mine"), 60)).toMatchObject({ status: "written" });
        expect(interposer.casReplaces).toBe(2);
      });

      it("a get-and-touch or touch in between does not change the CAS token: written", async () => {
        const interposer = new Interposer(client);
        const store = new MemcachedStore({ client: interposer, prefix: uniquePrefix("memcached-cas-touched") });
        const elsewhere = new MemcachedStore({ client: other, prefix: store.prefix });
        const id = randomUUID();
        const base = record("base");
        const mine = record("mine");
        await store.create(id, base, 60);
        interposer.beforeCasReplace = async () => {
          interposer.beforeCasReplace = undefined;
          expect(await elsewhere.get(id, 120)).toBe(base);
          expect(await elsewhere.touch(id, 180)).toBe(true);
        };
        expect(await store.compareAndSet!(id, base, mine, 300)).toMatchObject({ status: "written" });
        expect(interposer.casReplaces).toBe(1); // first try: reads by others cost no retry
        expect(await store.get(id)).toBe(mine);
        const ttl = await ttlOnServers(addresses, store.prefix + id);
        expect(ttl).toBeGreaterThan(295);
        expect(ttl).toBeLessThanOrEqual(300);
      });

      it("a TTL over 30 days is written as a future timestamp", async () => {
        const store = new MemcachedStore({ client, prefix: uniquePrefix("memcached-cas-40d") });
        const id = randomUUID();
        const base = record("base");
        await store.create(id, base, 60);
        expect(await store.compareAndSet!(id, base, record("long"), 40 * DAY)).toMatchObject({ status: "written" });
        const ttl = await ttlOnServers(addresses, store.prefix + id);
        expect(ttl, "item present").not.toBeNull();
        expect(Math.abs(ttl! - 40 * DAY)).toBeLessThanOrEqual(5);
      });

      it("a server that hands out no CAS token (memcached -C) fails the write instead of writing unconditionally", async () => {
        const interposer = new Interposer(client);
        interposer.blankCas = true;
        const store = new MemcachedStore({ client: interposer, prefix: uniquePrefix("memcached-cas-none") });
        const id = randomUUID();
        const base = record("base");
        await store.create(id, base, 60);
        const error = await store.compareAndSet!(id, base, record("blind"), 60).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(MemcachedStoreError);
        expect(error).toMatchObject({ code: "ERR_MEMCACHED_NO_CAS" });
        expect((error as Error).message).toMatch(/^MemcachedStore: 127\.0\.0\.1:\d+ returned no CAS token .*compareAndSet: false$/);
        expect(interposer.casReplaces).toBe(0);
        expect(await store.get(id)).toBe(base);
      });
    });

    describe("through the session manager", () => {
      let store: MemcachedStore;
      let manager: SessionManager;

      beforeAll(() => {
        store = new MemcachedStore({ client, prefix: uniquePrefix(`memcached-cas-core-${topology}`) });
        manager = createSessionManager({ store, secret: SECRET });
      });

      /** `count` requests that all load the session before any of them commits, each setting its own key. */
      async function parallelOwnKeys(on: SessionManager, cookie: string, round: number, count: number): Promise<void> {
        const sessions = await Promise.all(Array.from({ length: count }, () => load(on, cookie)));
        for (const [i, session] of sessions.entries()) {
          expect(session.isNew).toBe(false);
          dataOf(session)[`r${round}k${i}`] = { i, round, at: [i, "é✓"] };
        }
        await Promise.all(sessions.map((session) => on.commit(session)));
      }

      it("50 parallel requests each setting its own key: all 50 keys are in the record, round after round", async () => {
        const { id, cookie } = await newSession(manager, { userId: 1 });
        for (let round = 0; round < 6; round++) {
          await parallelOwnKeys(manager, cookie, round, 50);
          const data = await storedData(store, id);
          for (let r = 0; r <= round; r++) {
            for (let i = 0; i < 50; i++) expect(data?.[`r${r}k${i}`], `round ${r} key ${i} after round ${round}`).toEqual({ i, round: r, at: [i, "é✓"] });
          }
          expect(data?.userId).toBe(1);
          expect(Object.keys(data!)).toHaveLength(1 + 50 * (round + 1));
        }
      });

      it("the same race with compareAndSet: false keeps only one request's key (why the feature exists)", async () => {
        const plain = new MemcachedStore({ client, prefix: store.prefix, compareAndSet: false });
        const lossy = createSessionManager({ store: plain, secret: SECRET });
        const { id, cookie } = await newSession(lossy, { userId: 1 });
        await parallelOwnKeys(lossy, cookie, 0, 50);
        const data = await storedData(store, id);
        // Every request wrote back what it loaded plus its own key: the last replace wins whole.
        expect(Object.keys(data!).filter((key) => key.startsWith("r0k"))).toHaveLength(1);
        expect(data?.userId).toBe(1);
      });

      it("the same key changed by two requests: the later write wins, the other request's other keys stay", async () => {
        const { id, cookie } = await newSession(manager, { shared: 0, keep: "k" });
        const [first, second] = await Promise.all([load(manager, cookie), load(manager, cookie)]);
        dataOf(first).shared = 1;
        dataOf(first).onlyFirst = true;
        dataOf(second).shared = 2;
        delete dataOf(second).keep;
        await manager.commit(first);
        await manager.commit(second);
        expect(await storedData(store, id)).toEqual({ shared: 2, onlyFirst: true });
        // The request that lost the race now holds the merged data too.
        expect(dataOf(second)).toMatchObject({ shared: 2, onlyFirst: true });
        expect(dataOf(second).keep).toBeUndefined();
      });

      it("parallel increments of one key: the record stays valid and always holds a value some request wrote", async () => {
        const { id, cookie } = await newSession(manager, { counter: 0 });
        const written = new Set<number>([0]);
        let running = true;
        let checks = 0;
        const reader = (async () => {
          while (running) {
            const data = await storedData(store, id);
            expect(data, "the session exists throughout").not.toBeNull();
            expect(written.has(data!.counter as number), `counter ${String(data!.counter)} was written by a request`).toBe(true);
            checks += 1;
          }
        })();
        const workers = Array.from({ length: 12 }, async (_, w) => {
          for (let n = 0; n < 8; n++) {
            const session = await load(manager, cookie);
            const next = (dataOf(session).counter as number) + 1;
            written.add(next);
            dataOf(session).counter = next;
            dataOf(session)[`w${w}n${n}`] = next;
            await manager.commit(session);
          }
        });
        await Promise.all(workers);
        running = false;
        await reader;
        expect(checks).toBeGreaterThan(0);
        const data = await storedData(store, id);
        expect(written.has(data!.counter as number)).toBe(true);
        expect(data!.counter).toBeGreaterThanOrEqual(1);
        // Increments may be lost (same key: later write wins), but no request's own key is.
        for (let w = 0; w < 12; w++) for (let n = 0; n < 8; n++) expect(data![`w${w}n${n}`], `w${w}n${n}`).toBeTypeOf("number");
      });

      /** Slow requests: loaded and changed before `interrupt` runs, committed after it. */
      async function slowRequestsAround(cookie: string, interrupt: () => Promise<void>) {
        const slow = await Promise.all(Array.from({ length: 10 }, () => load(manager, cookie)));
        slow.forEach((session, i) => (dataOf(session)[`slow${i}`] = i));
        await interrupt();
        const results = await Promise.all(slow.map((session) => manager.commit(session)));
        for (const [i, result] of results.entries()) {
          expect(result.setCookie, `slow request ${i} expires the cookie`).toMatch(/^sid=; .*Max-Age=0/);
          expect(dataOf(slow[i]!)[`slow${i}`]).toBeUndefined();
        }
      }

      it("logout while slow requests are in flight: the session never comes back", async () => {
        const { id, cookie } = await newSession(manager, { userId: 42 });
        await slowRequestsAround(cookie, async () => {
          const logout = await load(manager, cookie);
          await logout.destroy();
          await manager.commit(logout);
          expect(await ttlOnServers(addresses, store.prefix + keyOf(id))).toBeNull();
        });
        expect(await ttlOnServers(addresses, store.prefix + keyOf(id))).toBeNull();
        expect((await load(manager, cookie)).isNew).toBe(true);
      });

      it("regenerate while slow requests are in flight: the old id never comes back, the new one gets none of their changes", async () => {
        const { id, cookie } = await newSession(manager, { cart: [1] });
        let fresh!: { id: string; cookie: string };
        await slowRequestsAround(cookie, async () => {
          const login = await load(manager, cookie);
          await login.regenerate();
          dataOf(login).userId = 7;
          fresh = { id: login.id, cookie: cookieOf((await manager.commit(login)).setCookie) };
        });
        expect(fresh.id).not.toBe(id);
        expect(await ttlOnServers(addresses, store.prefix + keyOf(id))).toBeNull();
        // regenerate() starts empty; what the regenerating request set after it is stored, the slow requests' keys never reach it.
        expect(await storedData(store, fresh.id)).toEqual({ userId: 7 });
        expect(dataOf(await load(manager, fresh.cookie)).userId).toBe(7);
      });

      for (const how of ["logout", "regenerate"] as const) {
        it(`${how} exactly between the slow requests' read and their CAS-replace: nothing is written back`, async () => {
          const interposer = new Interposer(client);
          // Generous bounds: the CAS-replaces wait for the logout, and the machine may be busy.
          const gated = new MemcachedStore({ client: interposer, prefix: store.prefix, timeout: 20 });
          // One manager per slow request, as if each ran in its own process: one manager runs the
          // writes of one session one after the other (#16 item 6), so only one would reach the gate.
          const slowManagers = Array.from({ length: 10 }, () => createSessionManager({ store: gated, secret: SECRET, storeTimeout: 30 }));
          const { id, cookie } = await newSession(manager, { userId: 5 });
          const slow = await Promise.all(slowManagers.map((slowManager) => load(slowManager, cookie)));
          slow.forEach((session, i) => (dataOf(session)[`slow${i}`] = i));

          let release!: () => void;
          const gate = new Promise<void>((resolve) => (release = resolve));
          interposer.beforeCasReplace = () => gate;
          const commits = Promise.all(slow.map((session, i) => slowManagers[i]!.commit(session)));
          // Every slow request has read the record (matching what it loaded) and is about to write.
          await until(() => interposer.casReplaces === slow.length, "all slow requests reach their CAS-replace");

          const other = await load(manager, cookie);
          if (how === "logout") await other.destroy();
          else await other.regenerate();
          await manager.commit(other);
          release();
          const results = await commits;

          for (const result of results) expect(result.setCookie).toMatch(/^sid=; .*Max-Age=0/);
          expect(await ttlOnServers(addresses, store.prefix + keyOf(id))).toBeNull();
          expect((await load(manager, cookie)).isNew).toBe(true);
        });
      }
    });
  });
}

describe("MemcachedStore compareAndSet: commands per request, counted on dedicated servers", () => {
  let addresses: string[];
  let client: memjs.Client;
  dedicatedMemcached(3, (servers) => ({ addresses, client } = servers));

  it("unchanged: 1 get-and-touch; changed: get-and-touch + a CAS-replace with the token it read; a conflict adds a get and a CAS-replace", async () => {
    const store = new MemcachedStore({ client, prefix: uniquePrefix("memcached-cas-count") });
    const manager = createSessionManager({ store, secret: SECRET });
    const { cookie } = await newSession(manager, { userId: 1 });

    expect(await countCommands(addresses, async () => manager.commit(await load(manager, cookie)))).toEqual({ cmd_touch: 1, touch_hits: 1 });
    const changed = await countCommands(addresses, async () => {
      const session = await load(manager, cookie);
      dataOf(session).userId = 2;
      await manager.commit(session);
    });
    // Two round trips, as a plain replace would take: the get-and-touch brought the CAS token.
    expect(changed).toEqual({ cmd_touch: 1, touch_hits: 1, cmd_set: 1, cas_hits: 1 });

    // Two requests load with the same token; the first commits (one CAS-replace); the second's
    // CAS-replace is refused, its get finds the first one's record, and the merge is written with
    // the token that get returned.
    const [first, second] = await Promise.all([load(manager, cookie), load(manager, cookie)]);
    dataOf(first).a = 1;
    dataOf(second).b = 2;
    expect(await countCommands(addresses, () => manager.commit(first))).toEqual({ cmd_set: 1, cas_hits: 1 });
    expect(await countCommands(addresses, () => manager.commit(second))).toEqual({ cmd_set: 2, cas_badval: 1, cmd_get: 1, get_hits: 1, cas_hits: 1 });
    expect(await storedData(store, second.id)).toMatchObject({ userId: 2, a: 1, b: 2 });

    // A second save in the same request uses the token the first write returned: one CAS-replace.
    const twice = await load(manager, cookie);
    dataOf(twice).c = 3;
    await manager.commit(twice);
    dataOf(twice).d = 4;
    expect(await countCommands(addresses, () => manager.commit(twice))).toEqual({ cmd_set: 1, cas_hits: 1 });

    // Logged out elsewhere: the CAS-replace finds no item, and nothing is written back.
    const late = await load(manager, cookie);
    dataOf(late).e = 5;
    await store.destroy(keyOf(late.id));
    expect(await countCommands(addresses, () => manager.commit(late))).toEqual({ cmd_set: 1, cas_misses: 1 });
    expect(await store.get(keyOf(late.id))).toBeNull();
  });

  it("a write landing between the read and the CAS-replace is refused by the server (cas_badval), then merged", async () => {
    const interposer = new Interposer(client);
    const store = new MemcachedStore({ client: interposer, prefix: uniquePrefix("memcached-cas-badval") });
    const manager = createSessionManager({ store, secret: SECRET });
    const other = createSessionManager({ store: new MemcachedStore({ client, prefix: store.prefix }), secret: SECRET });
    const { id, cookie } = await newSession(manager, { userId: 1 });
    const session = await load(manager, cookie);
    dataOf(session).mine = true;
    interposer.beforeCasReplace = async () => {
      interposer.beforeCasReplace = undefined;
      const theirs = await load(other, cookie);
      dataOf(theirs).theirs = true;
      await other.commit(theirs);
    };
    // Ours: CAS-replace with the token it read, refused; get (conflict); merged: CAS-replace with
    // the token that get returned. Theirs, in between: get-and-touch + CAS-replace.
    const counted = await countCommands(addresses, () => manager.commit(session));
    expect(counted).toEqual({ cmd_touch: 1, touch_hits: 1, cmd_get: 1, get_hits: 1, cmd_set: 3, cas_hits: 2, cas_badval: 1 });
    expect(await storedData(store, id)).toEqual({ userId: 1, mine: true, theirs: true });
  });

  it("compareAndSet: false: a changed write is get-and-touch + one plain replace", async () => {
    const store = new MemcachedStore({ client, prefix: uniquePrefix("memcached-cas-off-count"), compareAndSet: false });
    const manager = createSessionManager({ store, secret: SECRET });
    const { cookie } = await newSession(manager, { userId: 1 });
    const changed = await countCommands(addresses, async () => {
      const session = await load(manager, cookie);
      dataOf(session).userId = 2;
      await manager.commit(session);
    });
    expect(changed).toEqual({ cmd_touch: 1, touch_hits: 1, cmd_set: 1 });
  });
});
