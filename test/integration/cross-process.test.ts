/**
 * Several app processes, of different frameworks, on one store: a session moves freely between
 * them, a response is not sent before its write is in the store (each redirect is followed at
 * once by a read on ANOTHER process), and a process killed with SIGKILL and restarted loses nothing.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { services } from "../services/index.js";
import { AppProcess, Browser, ensureBuilt, inParallel } from "../helpers/app-process.js";
import { holdersOf } from "../helpers/memcached-servers.js";
import { EXAMPLES_SECRET, storeKeysFor } from "../helpers/store-keys.js";

/** Store keys of the example apps, which sign with their default secret. */
const keyOf = storeKeysFor(EXAMPLES_SECRET);
const USERS = 12;
const ROUNDS = 6;

interface Traveller {
  readonly name: string;
  readonly browser: Browser;
  count: number;
}

/**
 * Each user logs in on one app, then counts on the next, reads on the one after, and so on round
 * the ring: every read is on a different process from the write just before it.
 */
async function travel(apps: readonly AppProcess[], users: readonly Traveller[], rounds: number, offset: number): Promise<void> {
  await inParallel(users, users.length, async (user, u) => {
    for (let round = 0; round < rounds; round++) {
      const writer = apps[(u + round + offset) % apps.length]!;
      const reader = apps[(u + round + offset + 1) % apps.length]!;
      const count = await user.browser.post(writer.url, "/count");
      expect(count.status, `${user.name} counting on ${writer.name}`).toBe(303);
      user.count += 1;
      expect(await user.browser.whoami(reader.url), `${user.name} reading on ${reader.name} right after counting on ${writer.name}`).toEqual({
        user: user.name,
        count: user.count,
      });
    }
  });
}

async function logIn(apps: readonly AppProcess[], count: number): Promise<Traveller[]> {
  const users = Array.from({ length: count }, (_, i) => ({ name: `user-${i}`, browser: new Browser(), count: 0 }));
  await inParallel(users, users.length, async (user, u) => {
    const app = apps[u % apps.length]!;
    const reply = await user.browser.post(app.url, "/login", { user: user.name });
    expect(reply.status, app.output).toBe(303);
    expect(user.browser.sessionId).toBeDefined();
  });
  return users;
}

/** Every user, read on every app: the session is the same everywhere. */
async function expectEverywhere(apps: readonly AppProcess[], users: readonly Traveller[]): Promise<void> {
  for (const app of apps) {
    for (const user of users) {
      expect(await user.browser.whoami(app.url), `${user.name} on ${app.name}`).toEqual({ user: user.name, count: user.count });
    }
  }
}

beforeAll(async () => {
  await ensureBuilt();
}, 300_000); // a stale dist/ is rebuilt first

describe("four processes (node:http, Express, Koa, Fastify) on one Redis", () => {
  let apps: AppProcess[];
  let redis: Redis;

  beforeAll(async () => {
    const env = { REDIS_URL: services().redis.url, MEMCACHED_SERVERS: undefined };
    apps = await Promise.all((["node-http", "express", "koa", "fastify"] as const).map((name) => AppProcess.start(name, { env })));
    redis = new Redis(services().redis.url);
  });

  afterAll(async () => {
    redis?.disconnect();
    await Promise.all((apps ?? []).map((app) => app.kill()));
  });

  test("sessions move between processes and frameworks, survive a SIGKILL and a restart, and die everywhere at logout", async () => {
    const users = await logIn(apps, USERS);
    await travel(apps, users, ROUNDS, 0);
    await expectEverywhere(apps, users);

    // Crash two processes (nothing runs at SIGKILL: no flush, no goodbye) while the others keep serving.
    const koa = apps[2]!;
    const express = apps[1]!;
    const koaPid = koa.pid;
    expect(await koa.kill("SIGKILL")).toBeNull();
    expect(await express.kill("SIGKILL")).toBeNull();
    const survivors = [apps[0]!, apps[3]!];
    await travel(survivors, users, 2, 0);
    await expectEverywhere(survivors, users);

    // Restarted, on the same ports: new processes that never saw these sessions serve them.
    await koa.restart();
    await express.restart();
    expect(koa.pid).not.toBe(koaPid);
    await expectEverywhere(apps, users);
    await travel(apps, users, ROUNDS, 1);
    await expectEverywhere(apps, users);

    // Every session is one key in Redis, whoever served it.
    const ids = users.map((user) => user.browser.sessionId!);
    expect(new Set(ids).size).toBe(USERS);
    expect(await redis.exists(...ids.map((id) => `sess:${keyOf(id)}`))).toBe(USERS);

    // Log out on one process each: the old cookie is dead on all of them.
    await inParallel(users, users.length, async (user, u) => {
      const cookie = user.browser.cookieHeader;
      expect((await user.browser.post(apps[u % apps.length]!.url, "/logout")).status).toBe(303);
      const replay = new Browser();
      replay.cookies.set("sid", cookie.slice("sid=".length));
      for (const app of apps) expect(await replay.whoami(app.url), `${user.name} on ${app.name} after logout`).toEqual({ user: null, count: 0 });
    });
    expect(await redis.exists(...ids.map((id) => `sess:${keyOf(id)}`))).toBe(0);
  });
});

describe("two processes (Express, Fastify) on three Memcached servers", () => {
  let apps: AppProcess[];
  let addresses: string[];

  beforeAll(async () => {
    addresses = services().memcachedMulti.servers.map((server) => server.address);
    expect(addresses).toHaveLength(3);
    const env = { MEMCACHED_SERVERS: addresses.join(","), REDIS_URL: undefined };
    apps = await Promise.all((["express", "fastify"] as const).map((name) => AppProcess.start(name, { env })));
  });

  afterAll(async () => {
    await Promise.all((apps ?? []).map((app) => app.kill()));
  });

  test("each session lives on exactly one server, every process finds it there, and a SIGKILL loses none", async () => {
    const users = await logIn(apps, 30);
    await travel(apps, users, 3, 0);

    // Both processes hash every key to the same server, and the keys spread over all three.
    const holders = await Promise.all(users.map((user) => holdersOf(addresses, `sess:${keyOf(user.browser.sessionId!)}`)));
    for (const held of holders) expect(held).toHaveLength(1);
    expect(new Set(holders.map((held) => held[0])).size).toBe(3);

    const fastify = apps[1]!;
    await fastify.kill("SIGKILL");
    await fastify.restart();
    await expectEverywhere(apps, users);
    await travel(apps, users, 2, 1);

    await inParallel(users, 10, async (user) => {
      const id = user.browser.sessionId!;
      expect((await user.browser.post(fastify.url, "/logout")).status).toBe(303);
      expect(await holdersOf(addresses, `sess:${keyOf(id)}`)).toEqual([]);
    });
  });
});
