// A consumer app as a team writes it: every subpath imported, SessionData augmented in a .d.ts,
// strict TypeScript. Compiled by tsc under each module setting (see ../check.mjs), then run by node.
import { createSessionManager, SessionConfigError, type Session, type SessionStore } from "shared-session";
import { RedisStore, createRedisClient } from "shared-session/redis";
import { MemcachedStore, createMemcachedClient } from "shared-session/memcached";
import { expressSession } from "shared-session/express";
import { koaSession } from "shared-session/koa";
import { fastifySession } from "shared-session/fastify";
import { MemoryStore } from "shared-session/testing";
import type { ConformanceOptions } from "shared-session/testing/conformance";
import express from "express";
import Koa from "koa";
import Fastify from "fastify";

const secret = "a-secret-of-at-least-32-characters!";

// process.env values are string | undefined under strict: the factories take them as they are
// and fail at boot with a clear message when unset (never called here: nothing listens in this check).
export function productionStores(): SessionStore[] {
  const redis = createRedisClient(process.env.REDIS_URL);
  redis.on("error", (err: Error) => console.error("redis", err.message));
  const memcached = createMemcachedClient(process.env.MEMCACHED_SERVERS);
  return [new RedisStore({ client: redis }), new MemcachedStore({ client: memcached })];
}

const store = new MemoryStore({ quiet: true });

const app = express();
app.use(expressSession({ store, secret }));
app.get("/", (req, res) => {
  req.session.userId = 1;
  // @ts-expect-error SessionData says userId is a number (session.d.ts)
  req.session.userId = "one";
  res.json({ views: req.session.views ?? 0 });
});

const koa = new Koa();
koa.use(koaSession({ store, secret }));
koa.use(async (ctx) => {
  const userId: number | undefined = ctx.session.userId;
  ctx.body = { userId };
});

const fastify = Fastify();
void fastify.register(fastifySession, { store, secret });
fastify.get("/", async (request) => {
  request.session.views = (request.session.views ?? 0) + 1;
  return { views: request.session.views };
});

const conformance: ConformanceOptions<MemoryStore> = { name: "MemoryStore", createStore: () => new MemoryStore({ quiet: true }) };

async function main(): Promise<void> {
  const manager = createSessionManager({ store, secret });
  await manager.ready({ timeout: 1 });
  const session: Session = await manager.load(undefined, { secure: false });
  session.userId = 7;
  const { setCookie } = await manager.commit(session);
  if (!setCookie?.startsWith("sid=")) throw new Error(`unexpected Set-Cookie ${String(setCookie)}`);
  let refused = false;
  try {
    createSessionManager({ store, secret: "short" });
  } catch (err) {
    refused = err instanceof SessionConfigError;
  }
  if (!refused) throw new Error("a short secret was not refused with SessionConfigError");
  await fastify.close();
  console.log(`ok ${conformance.name} ${typeof productionStores}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
