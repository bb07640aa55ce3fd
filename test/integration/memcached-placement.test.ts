/**
 * Where MemcachedStore's sessions live on several real memcached servers: ketama consistent hashing
 * by default (each key on the server libmemcached would pick), and what growing the pool from three
 * servers to four costs in logged-out users, against memjs's `hash % servers`.
 */
import type memjs from "memjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemcachedStore, createMemcachedClient, type MemcachedClientOptions } from "../../adapters/memcached.js";
import { KetamaContinuum } from "../../adapters/memcached/ketama.js";
import { createSessionManager } from "../../src/index.js";
import { startMemcached, type MemcachedHandle } from "../services/index.js";
import { holdersOf } from "../helpers/memcached-servers.js";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";
const SESSIONS = 1_000;

let handle: MemcachedHandle;
let addresses: string[];
const clients: memjs.Client[] = [];

beforeAll(async () => {
  handle = await startMemcached(4);
  addresses = handle.servers.map((server) => server.address);
});
afterAll(async () => {
  for (const client of clients) client.close();
  await handle?.close();
});

function managerOn(servers: readonly string[], prefix: string, options: MemcachedClientOptions = {}) {
  const client = createMemcachedClient(servers, options);
  clients.push(client);
  return createSessionManager({ store: new MemcachedStore({ client, prefix }), secret: SECRET });
}

/** Log `count` users in through the pool and return their cookies. */
async function logins(manager: ReturnType<typeof managerOn>, count: number): Promise<{ cookie: string; id: string }[]> {
  const made: { cookie: string; id: string }[] = [];
  for (let batch = 0; batch < count; batch += 50) {
    made.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, count - batch) }, async (_, i) => {
          const session = await manager.load(undefined, { secure: false });
          (session as unknown as Record<string, unknown>).user = batch + i;
          const setCookie = (await manager.commit(session)).setCookie!;
          // `id`: the store key its record lives under (a keyed hash of the session id).
          return { cookie: setCookie.split(";")[0]!, id: manager.storeKeyOf(session.id) };
        }),
      )),
    );
  }
  return made;
}

/** How many of `cookies` still find their session through `manager`. */
async function found(manager: ReturnType<typeof managerOn>, cookies: readonly { cookie: string }[]): Promise<number> {
  let n = 0;
  for (let batch = 0; batch < cookies.length; batch += 50) {
    const loaded = await Promise.all(cookies.slice(batch, batch + 50).map(({ cookie }) => manager.load(cookie, { secure: false })));
    n += loaded.filter((session) => !session.isNew).length;
  }
  return n;
}

describe("Memcached placement on real servers", () => {
  it("puts each session on the server ketama (libmemcached's placement) picks", async () => {
    const three = addresses.slice(0, 3);
    const prefix = "placed:";
    const sessions = await logins(managerOn(three, prefix), 60);
    const continuum = new KetamaContinuum(handle.servers.slice(0, 3).map((server) => ({ host: server.host, port: server.port })));
    const perServer = [0, 0, 0];
    for (const { id } of sessions) {
      const key = prefix + id;
      const holders = await holdersOf(three, key);
      expect(holders, key).toEqual([continuum.serverFor(key)]);
      perServer[holders[0]!]! += 1;
    }
    // And the keys are spread: every server holds some.
    expect(Math.min(...perServer)).toBeGreaterThan(0);
  });

  it(`adding a fourth server to three keeps about three quarters of ${SESSIONS} sessions (ketama), where hash % n keeps about a quarter`, async () => {
    const three = addresses.slice(0, 3);
    const four = addresses;

    const ketamaSessions = await logins(managerOn(three, "grow-ketama:"), SESSIONS);
    expect(await found(managerOn(three, "grow-ketama:"), ketamaSessions)).toBe(SESSIONS);
    const keptByKetama = await found(managerOn(four, "grow-ketama:"), ketamaSessions);
    expect(keptByKetama / SESSIONS).toBeGreaterThanOrEqual(0.65);

    // The placement of earlier versions (memjs's own), still available as distribution: "modula".
    const modula = { distribution: "modula" } as const;
    const modulaSessions = await logins(managerOn(three, "grow-modula:", modula), SESSIONS);
    const keptByModula = await found(managerOn(four, "grow-modula:", modula), modulaSessions);
    expect(keptByModula / SESSIONS).toBeLessThan(0.4);
  }, 60_000);

  it("weights give a server a larger share", async () => {
    const three = addresses.slice(0, 3);
    const prefix = "weighted:";
    const sessions = await logins(managerOn(three, prefix, { weights: [1, 1, 4] }), 300);
    const perServer = [0, 0, 0];
    for (const { id } of sessions) perServer[(await holdersOf(three, prefix + id))[0]!]! += 1;
    expect(perServer[2]).toBeGreaterThan(perServer[0]! + perServer[1]!);
  });

  it("checks its placement options at construction", () => {
    expect(() => createMemcachedClient(addresses, { distribution: "random" as never })).toThrow(/distribution must be "ketama" or "modula"/);
    expect(() => createMemcachedClient(addresses, { weights: [1, 2] })).toThrow(/one whole number >= 1 per server/);
    expect(() => createMemcachedClient(addresses, { distribution: "modula", weights: [1, 1, 1, 1] })).toThrow(/weights need distribution: "ketama"/);
  });
});
