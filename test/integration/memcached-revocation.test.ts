/**
 * Revocation on Memcached (#19 item 2): no owner index, so "log out everywhere" is a per-owner mark
 * ("sessions owned before T are revoked") that every load of an owned session reads. Real servers;
 * commands counted with `stats` on dedicated servers.
 */
import type memjs from "memjs";
import { describe, expect, it } from "vitest";
import { MemcachedStore } from "../../adapters/memcached.js";
import { revocationKey } from "../../src/core/owners.js";
import { createSessionManager, UnsupportedOperationError, type SessionManager } from "../../src/index.js";
import { uniquePrefix } from "../services/index.js";
import { countCommands, dedicatedMemcached } from "../helpers/memcached-servers.js";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";
type Data = { userId?: string; n?: number };

async function request(manager: SessionManager<Data>, cookie: string | undefined, change?: (s: Data) => void) {
  const session = await manager.load(cookie, { secure: false });
  change?.(session as Data);
  const { setCookie } = await manager.commit(session);
  const next = setCookie === undefined ? cookie : /Max-Age=0/.test(setCookie) ? undefined : setCookie.split(";")[0]!;
  return { session: session as typeof session & Data, cookie: next };
}

async function login(manager: SessionManager<Data>, userId: string) {
  const { cookie } = await request(manager, undefined, (s) => void (s.userId = userId));
  return cookie!;
}

async function userOf(manager: SessionManager<Data>, cookie: string): Promise<string | undefined> {
  return (await request(manager, cookie)).session.userId;
}

async function nextMillisecond(): Promise<void> {
  const t = Date.now();
  while (Date.now() <= t) await new Promise((resolve) => setImmediate(resolve));
}

describe("revokeOwnerSessions on Memcached (dedicated servers)", () => {
  let addresses: string[];
  let client: memjs.Client;
  dedicatedMemcached(3, (servers) => ({ addresses, client } = servers));

  function processes(prefix: string) {
    const make = () => createSessionManager<Data>({ store: new MemcachedStore({ client, prefix }), secret: SECRET, owner: (d) => d.userId });
    return [make(), make()] as const;
  }

  it("a password change in one process logs the owner out of every session in every process; others and later logins live", async () => {
    const [a, b] = processes(uniquePrefix("mc-revoke"));
    const phone = await login(a, "alice");
    const laptop = await login(b, "alice");
    const bob = await login(a, "bob");
    const current = (await request(b, laptop)).session;
    expect(await b.revokeOwnerSessions("alice", { except: current })).toBe(0); // no index: nothing counted, the mark does it
    await nextMillisecond();
    const later = await login(b, "alice");
    for (const m of [a, b]) {
      expect(await userOf(m, phone)).toBeUndefined();
      expect(await userOf(m, laptop)).toBe("alice"); // the request that changed the password
      expect(await userOf(m, bob)).toBe("bob");
      expect(await userOf(m, later)).toBe("alice");
    }
    // Listing and destroying by index stay refused: there is no index.
    await expect(a.listSessions("alice")).rejects.toBeInstanceOf(UnsupportedOperationError);
  });

  it("costs: a login is an add and a get; a read of an owned session is two gets (the record, the owner's mark); anonymous one; a revocation one add", async () => {
    const prefix = uniquePrefix("mc-revoke-count");
    const [manager] = processes(prefix);
    let owned = "";
    // A login: the record's add, then the owner's mark (none yet: a miss).
    expect(await countCommands(addresses, async () => void (owned = await login(manager, "carol")))).toEqual({ cmd_set: 1, cmd_get: 1, get_misses: 1 });
    const anonymous = (await request(manager, undefined, (s) => void (s.n = 1))).cookie!;
    expect(await countCommands(addresses, () => request(manager, owned))).toEqual({ cmd_touch: 1, touch_hits: 1, cmd_get: 1, get_misses: 1 });
    expect(await countCommands(addresses, () => request(manager, anonymous))).toEqual({ cmd_touch: 1, touch_hits: 1 });
    expect(await countCommands(addresses, () => manager.revokeOwnerSessions("carol"))).toEqual({ cmd_set: 1 });
    // The revoked session's next read finds the mark and deletes the record.
    expect(await countCommands(addresses, () => request(manager, owned))).toEqual({ cmd_touch: 1, touch_hits: 1, cmd_get: 1, get_hits: 1, delete_hits: 1 });
  });

  it("the trade-off: a mark Memcached evicts (here: deleted) no longer revokes a session not read since the revocation", async () => {
    const prefix = uniquePrefix("mc-revoke-evict");
    const [manager] = processes(prefix);
    const idle = await login(manager, "dave");
    const active = await login(manager, "dave");
    await manager.revokeOwnerSessions("dave");
    expect(await userOf(manager, active)).toBeUndefined(); // read while the mark was there: its record is gone for good
    await client.delete(`${prefix}${revocationKey("dave")}`); // what an eviction does
    expect(await userOf(manager, idle)).toBe("dave"); // never read since: it comes back
  });
});
