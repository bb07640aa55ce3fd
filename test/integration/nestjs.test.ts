/**
 * The NestJS examples (examples/nestjs-express.ts on @nestjs/platform-express with our Express
 * middleware, examples/nestjs-fastify.ts on @nestjs/platform-fastify with our Fastify plugin), run as
 * real processes through tsx against the built package on a real Redis: login → count → logout with
 * the record checked in Redis, and one session moving between the two Nest apps.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLES_SECRET, storeKeysFor } from "../helpers/store-keys.js";
import { services } from "../services/index.js";
import { AppProcess, ensureBuilt } from "../helpers/app-process.js";

const keyOf = storeKeysFor(EXAMPLES_SECRET);
const NEST_APPS = ["nestjs-express", "nestjs-fastify"] as const;

interface Answer {
  status: number;
  setCookies: string[];
  body: unknown;
}

/** A JSON client with a one-cookie jar (`sid`). */
class Client {
  cookie: string | undefined;

  async send(base: string, method: "GET" | "POST", path: string, json?: unknown): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (this.cookie !== undefined) headers.cookie = this.cookie;
    if (json !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(new URL(path, base), { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
    const setCookies = response.headers.getSetCookie();
    for (const line of setCookies) {
      const pair = line.split(";")[0]!;
      this.cookie = /Max-Age=0/.test(line) ? undefined : pair;
    }
    return { status: response.status, setCookies, body: await response.json() };
  }

  get id(): string | undefined {
    const value = this.cookie?.slice("sid=".length);
    return value?.slice(0, value.lastIndexOf("."));
  }
}

let redis: Redis;
const apps = new Map<string, AppProcess>();

beforeAll(async () => {
  await ensureBuilt();
  redis = new Redis(services().redis.url);
  const env = { REDIS_URL: services().redis.url, MEMCACHED_SERVERS: undefined };
  // Nest needs legacy decorators: tsx compiles them as tsconfig.json says (experimentalDecorators).
  const started = await Promise.all(NEST_APPS.map((name) => AppProcess.start(name, { env, script: `examples/${name}.ts`, nodeArgs: ["--import", "tsx"] })));
  for (const app of started) apps.set(app.name, app);
}, 300_000);

afterAll(async () => {
  await Promise.all([...apps.values()].map((app) => app.kill()));
  redis?.disconnect();
});

describe.each(NEST_APPS)("examples/%s.ts on Redis", (name) => {
  const other = NEST_APPS.find((n) => n !== name)!;

  it("login → count → logout through the Nest controller, the record in Redis exactly while logged in, and the other Nest app sharing it", async () => {
    const app = apps.get(name)!;
    const client = new Client();
    const first = await client.send(app.url, "GET", "/me");
    expect(first).toEqual({ status: 200, setCookies: [], body: { user: null, count: 0 } });

    const login = await client.send(app.url, "POST", "/login", { user: "ada" });
    expect(login.status, app.output).toBe(200);
    expect(login.body).toEqual({ user: "ada", count: 0 });
    expect(login.setCookies).toEqual([expect.stringMatching(/^sid=[0-9a-f-]{36}\.[A-Za-z0-9+/]{43}; Path=\/; HttpOnly; SameSite=Lax$/)]);
    const id = client.id!;
    expect(await redis.exists(`sess:${keyOf(id)}`)).toBe(1);

    expect((await client.send(app.url, "POST", "/count")).body).toEqual({ user: "ada", count: 1 });
    // The other Nest app, on the other platform and its own process, serves the same session.
    const there = await client.send(apps.get(other)!.url, "POST", "/count");
    expect(there).toEqual({ status: 200, setCookies: [], body: { user: "ada", count: 2 } });
    expect((await client.send(app.url, "GET", "/me")).body).toEqual({ user: "ada", count: 2 });

    const loggedIn = client.cookie;
    const logout = await client.send(app.url, "POST", "/logout");
    expect(logout.status).toBe(200);
    expect(logout.setCookies).toEqual([expect.stringMatching(/^sid=;.*Max-Age=0/)]);
    expect(await redis.exists(`sess:${keyOf(id)}`)).toBe(0);

    const replay = new Client();
    replay.cookie = loggedIn;
    expect((await replay.send(apps.get(other)!.url, "GET", "/me")).body).toEqual({ user: null, count: 0 });
    expect((await replay.send(app.url, "POST", "/count")).status).toBe(401);
    expect((await replay.send(app.url, "POST", "/login", {})).status).toBe(400);
  });

  it("a login replaces the session id and drops what was there before", async () => {
    const app = apps.get(name)!;
    const client = new Client();
    await client.send(app.url, "POST", "/login", { user: "ada" });
    await client.send(app.url, "POST", "/count");
    const before = client.id!;
    const again = await client.send(app.url, "POST", "/login", { user: "grace" });
    expect(again.body).toEqual({ user: "grace", count: 0 });
    expect(client.id).not.toBe(before);
    expect(await redis.exists(`sess:${keyOf(before)}`)).toBe(0);
    expect((await client.send(apps.get(other)!.url, "GET", "/me")).body).toEqual({ user: "grace", count: 0 });
  });

  it("SIGTERM closes the app cleanly (exit code 0)", async () => {
    const own = await AppProcess.start(name, {
      env: { REDIS_URL: services().redis.url, MEMCACHED_SERVERS: undefined },
      script: `examples/${name}.ts`,
      nodeArgs: ["--import", "tsx"],
    });
    await new Client().send(own.url, "POST", "/login", { user: "ada" });
    expect(await own.kill("SIGTERM")).toBe(0);
  });
});
