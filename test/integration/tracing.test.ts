/**
 * The `node:diagnostics_channel` TracingChannels, subscribed to as an APM would, through real HTTP
 * requests on every binding and a real Redis: what each channel publishes, in which order, and that
 * no message holds a session id, a cookie value or session data.
 */
import { tracingChannel } from "node:diagnostics_channel";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createRedisClient, RedisStore } from "../../adapters/redis.js";
import { createSessionManager, type SessionOptions } from "../../src/index.js";
import { FRAMEWORKS } from "../helpers/framework-apps.js";
import { cookieHeader, idOf, request, sessionCookie } from "../helpers/http.js";
import { services, uniquePrefix } from "../services/index.js";
import { closeClients, tracked } from "../helpers/redis-clients.js";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";
const CHANNELS = ["load", "commit", "store"] as const;
const EVENTS = ["start", "end", "asyncStart", "asyncEnd", "error"] as const;

interface Message {
  readonly channel: (typeof CHANNELS)[number];
  readonly event: (typeof EVENTS)[number];
  /** The context as it was when published, copied (the library mutates one object per operation). */
  readonly context: Record<string, unknown>;
  /** Everything in the message as text, the error's message and stack included. */
  readonly text: string;
}

/** Subscribe to every event of the three channels, as an APM would; returns the messages and an unsubscribe. */
function subscribe(): { messages: Message[]; stop: () => void } {
  const messages: Message[] = [];
  const stops: (() => void)[] = [];
  for (const channel of CHANNELS) {
    const tc = tracingChannel(`shared-session:${channel}`);
    const handlers = Object.fromEntries(
      EVENTS.map((event) => [
        event,
        (message: unknown) => {
          const context = { ...(message as Record<string, unknown>) };
          const error = context.error as Error | undefined;
          const text = JSON.stringify(context) + (error ? `${error.message}\n${error.stack ?? ""}\n${String((error as { cause?: unknown }).cause ?? "")}` : "");
          messages.push({ channel, event, context, text });
        },
      ]),
    ) as unknown as Parameters<typeof tc.subscribe>[0];
    tc.subscribe(handlers);
    stops.push(() => tc.unsubscribe(handlers));
  }
  return { messages, stop: () => stops.forEach((s) => s()) };
}

/** The contexts of one channel's `asyncEnd` (one per operation, once its outcome is known). */
function ended(messages: readonly Message[], channel: Message["channel"]): Record<string, unknown>[] {
  return messages.filter((m) => m.channel === channel && m.event === "asyncEnd").map((m) => m.context);
}

afterAll(() => closeClients());

describe.each(FRAMEWORKS)("tracing channels through $name on Redis", (framework) => {
  let raw: Redis;
  let options: SessionOptions;
  let app: Awaited<ReturnType<typeof framework.start>>;
  let tap: ReturnType<typeof subscribe>;

  beforeAll(async () => {
    raw = tracked(createRedisClient(services().redis.url));
    options = { store: new RedisStore({ client: raw, prefix: uniquePrefix(`tracing-${framework.name}`) }), secret: SECRET };
    app = await framework.start(options);
    return () => app.close();
  });
  afterEach(() => tap?.stop());

  it("publishes load, commit and one store message per call, with outcomes and hashed ids only", async () => {
    const hasher = createSessionManager(options);
    tap = subscribe();

    // Anonymous: a load and a commit with nothing to do, no store call.
    expect((await request(app.url, "/noop")).status).toBe(200);
    expect(ended(tap.messages, "load")).toEqual([{ session: undefined, outcome: "none" }]);
    expect(ended(tap.messages, "commit")).toEqual([{ session: undefined, outcome: "none", conflicts: 0 }]);
    expect(ended(tap.messages, "store")).toEqual([]);

    // Log in: a new session is created.
    tap.messages.length = 0;
    const login = await request(app.url, "/login?user=4242", { method: "POST" });
    const cookie = sessionCookie(login);
    const id = idOf(cookie);
    const hash = hasher.hashOf(id);
    expect(hash).toMatch(/^[0-9a-f]{16}$/);
    expect(ended(tap.messages, "load")).toEqual([{ session: undefined, outcome: "none" }]);
    expect(ended(tap.messages, "commit")).toEqual([{ session: hash, outcome: "created", conflicts: 0 }]);
    expect(ended(tap.messages, "store")).toEqual([{ store: "RedisStore", operation: "create", session: hash, outcome: "created" }]);
    // Each operation: start, end, asyncStart, asyncEnd, in that order, no error.
    expect(tap.messages.filter((m) => m.channel === "store").map((m) => m.event)).toEqual(["start", "end", "asyncStart", "asyncEnd"]);

    // Read: a hit, nothing written.
    tap.messages.length = 0;
    expect((await request(app.url, "/me", { cookie: cookieHeader(cookie) })).json()).toMatchObject({ userId: 4242 });
    expect(ended(tap.messages, "load")).toEqual([{ session: hash, outcome: "hit" }]);
    expect(ended(tap.messages, "commit")).toEqual([{ session: hash, outcome: "unchanged", conflicts: 0 }]);
    expect(ended(tap.messages, "store")).toEqual([{ store: "RedisStore", operation: "get", session: hash, outcome: "hit" }]);

    // A change: written by compare-and-set.
    tap.messages.length = 0;
    await request(app.url, "/visit", { method: "POST", cookie: cookieHeader(cookie) });
    expect(ended(tap.messages, "commit")).toEqual([{ session: hash, outcome: "written", conflicts: 0 }]);
    expect(ended(tap.messages, "store").map((c) => [c.operation, c.outcome])).toEqual([
      ["get", "hit"],
      ["compareAndSet", "written"],
    ]);

    // Log out, then the old cookie: a miss.
    tap.messages.length = 0;
    await request(app.url, "/logout", { method: "POST", cookie: cookieHeader(cookie) });
    expect(ended(tap.messages, "store").map((c) => [c.operation, c.session])).toEqual([
      ["get", hash],
      ["destroy", hash],
    ]);
    tap.messages.length = 0;
    await request(app.url, "/me", { cookie: cookieHeader(cookie) });
    expect(ended(tap.messages, "load")).toEqual([{ session: hash, outcome: "miss" }]);

    // A forged cookie never reaches the store.
    tap.messages.length = 0;
    await request(app.url, "/me", { cookie: `sid=${id}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA` });
    expect(ended(tap.messages, "load")).toEqual([{ session: undefined, outcome: "rejected" }]);
    expect(ended(tap.messages, "store")).toEqual([]);
  });

  it("never publishes a session id, a cookie value or session data", async () => {
    tap = subscribe();
    const login = await request(app.url, "/login?user=987654321", { method: "POST" });
    const cookie = sessionCookie(login);
    for (let i = 0; i < 3; i++) await request(app.url, "/visit", { method: "POST", cookie: cookieHeader(cookie) });
    await request(app.url, "/me", { cookie: cookieHeader(cookie) });
    await request(app.url, "/logout", { method: "POST", cookie: cookieHeader(cookie) });
    expect(tap.messages.length).toBeGreaterThan(20);
    const id = idOf(cookie);
    for (const message of tap.messages) {
      expect(message.text).not.toContain(id);
      expect(message.text).not.toContain(cookie.value.slice(id.length + 1));
      expect(message.text).not.toContain("987654321");
      expect(message.text).not.toContain("visits");
    }
  });
});

describe("tracing channels: conflicts and failures", () => {
  const store = () => new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix: uniquePrefix("tracing-cas") });
  let tap: ReturnType<typeof subscribe> | undefined;
  afterEach(() => tap?.stop());

  it("counts the compare-and-set conflicts a commit met and merged", async () => {
    const manager = createSessionManager<{ a?: number; b?: number }>({ store: store(), secret: SECRET });
    const first = await manager.load(undefined, { secure: false });
    first.a = 1;
    const cookie = (await manager.commit(first)).setCookie!.split(";")[0]!;
    const one = await manager.load(cookie, { secure: false });
    const two = await manager.load(cookie, { secure: false });
    one.a = 2;
    two.b = 3;
    await manager.commit(one);
    tap = subscribe();
    await manager.commit(two);
    const hash = manager.hashOf(one.id);
    expect(ended(tap.messages, "commit")).toEqual([{ session: hash, outcome: "written", conflicts: 1 }]);
    expect(ended(tap.messages, "store").map((c) => c.outcome)).toEqual(["conflict", "written"]);
    const merged = await manager.load(cookie, { secure: false });
    expect({ a: merged.a, b: merged.b }).toEqual({ a: 2, b: 3 });
  });

  it("traces a session carried in a header like one carried in a cookie", async () => {
    const manager = createSessionManager<{ n?: number }>({ store: store(), secret: SECRET, header: {} });
    const session = await manager.load(undefined, { secure: false });
    session.n = 1;
    const { setHeader } = await manager.commit(session);
    tap = subscribe();
    const hash = manager.hashOf(session.id);
    expect((await manager.load(undefined, { secure: false, header: `Bearer ${setHeader![1]}` })).n).toBe(1);
    await manager.load(undefined, { secure: false, header: "Bearer forged.token" });
    expect(ended(tap.messages, "load")).toEqual([
      { session: hash, outcome: "hit" },
      { session: undefined, outcome: "rejected" },
    ]);
    for (const message of tap.messages) expect(message.text).not.toContain(session.id);
  });

  it("reports a failed store call as an error on the store and load channels, without the id", async () => {
    const client = tracked(createRedisClient(services().redis.url));
    const manager = createSessionManager<{ x?: number }>({ store: new RedisStore({ client, prefix: uniquePrefix("tracing-down") }), secret: SECRET });
    const session = await manager.load(undefined, { secure: false });
    session.x = 1;
    const cookie = (await manager.commit(session)).setCookie!.split(";")[0]!;
    client.disconnect();
    tap = subscribe();
    await expect(manager.load(cookie, { secure: false })).rejects.toMatchObject({ store: "RedisStore", operation: "get" });
    const hash = manager.hashOf(session.id);
    expect(ended(tap.messages, "store")).toMatchObject([{ operation: "get", session: hash, outcome: "error" }]);
    expect(ended(tap.messages, "load")).toMatchObject([{ session: hash, outcome: "error" }]);
    expect(tap.messages.filter((m) => m.event === "error").map((m) => m.channel)).toEqual(["store", "load"]);
    for (const message of tap.messages) expect(message.text).not.toContain(session.id);
  });
});
