import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Session, SessionStore } from "../../src/index.js";
import { IDLE_TTL, SECRET, type Variant } from "../config.js";
import { library } from "../library.js";

/** What the parent tells an app process. */
export interface AppContext {
  readonly variant: Variant;
  readonly redisUrl: string;
  /** `host:port` of the Memcached server. */
  readonly memcached: string;
  /** Key prefix of this app's sessions (one per app, so apps never share records). */
  readonly prefix: string;
}

export interface RunningApp {
  readonly port: number;
  close(): Promise<void>;
}

/** The session data of the benchmark apps. */
export interface BenchData {
  userId: number;
  counter: number;
}

export type BenchSession = Session<BenchData>;

/** The routes every app serves: read, write, anonymous and login. */
export const ROUTES = { read: "/read", write: "/write", anonymous: "/anonymous", login: "/login" } as const;

let nextUser = 1;
/** A user id for a login. */
export function newUserId(): number {
  return nextUser++;
}

/** Our store for a variant, with the client settings our docs recommend (auto-pipelining, fail-fast). */
export async function ourStore(ctx: AppContext): Promise<{ store: SessionStore; close(): Promise<void> }> {
  const { redis, memcached } = await library();
  const { createRedisClient, RedisStore } = redis;
  const { createMemcachedClient, MemcachedStore } = memcached;
  if (ctx.variant === "ours-redis") {
    const client = createRedisClient(ctx.redisUrl);
    client.on("error", () => undefined);
    return { store: new RedisStore({ client, prefix: ctx.prefix }), close: async () => void (await client.quit()) };
  }
  if (ctx.variant === "ours-memcached") {
    const client = createMemcachedClient([ctx.memcached]);
    return { store: new MemcachedStore({ client, prefix: ctx.prefix }), close: async () => client.close() };
  }
  throw new Error(`bench: ${ctx.variant} is not one of ours`);
}

/**
 * The floor variant's one command per request: `GETEX` of a record the size of a benchmark session,
 * on a client made as ours is (createRedisClient), with nothing around it.
 */
export async function floorRead(ctx: AppContext): Promise<{ read(): Promise<string | null>; close(): Promise<void> }> {
  const { createRedisClient } = (await library()).redis;
  const client = createRedisClient(ctx.redisUrl);
  client.on("error", () => undefined);
  if (client.status !== "ready") await new Promise((resolve) => client.once("ready", resolve));
  const key = `${ctx.prefix}floor`;
  const now = Date.now();
  await client.set(key, `{"v":1,"createdAt":${now},"expiresAt":${now + 864e5},"writtenAt":${now}}\n{"userId":1}`, "EX", IDLE_TTL);
  return { read: () => client.getex(key, "EX", IDLE_TTL), close: async () => void (await client.quit()) };
}

/** Options of our bindings, the same for the three frameworks. */
export function ourOptions(store: SessionStore) {
  return { store, secret: SECRET, idleTimeout: IDLE_TTL };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

/** Listen on a free loopback port; closing stops the server (connections included), then the store. */
export async function serve(server: Server, closeStore: () => Promise<void>): Promise<RunningApp> {
  const port = await listen(server);
  return {
    port,
    async close() {
      await closeServer(server);
      await closeStore();
    },
  };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
