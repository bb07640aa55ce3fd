import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { IDLE_TTL, SECRET } from "../config.js";
import { library } from "../library.js";
import { floorRead, newUserId, ourOptions, ourStore, ROUTES, type AppContext, type BenchSession, type RunningApp } from "./common.js";
import { ConnectRedisStore, createNodeRedisClient, fastifyCookie, fastifyPeerSession, type PeerSession } from "./peers.js";

/** Fastify 5 app for one variant (logger off, as Fastify's own benchmarks run it). */
export async function startFastify(ctx: AppContext): Promise<RunningApp> {
  const app: FastifyInstance = Fastify({ logger: false });
  let closeStore = async (): Promise<void> => undefined;

  if (ctx.variant === "bare") {
    app.post(ROUTES.login, async () => "ok");
    app.get(ROUTES.read, async () => "user 0");
    app.post(ROUTES.write, async () => "1");
    app.get(ROUTES.anonymous, async () => "hello");
  } else if (ctx.variant === "floor-redis") {
    const floor = await floorRead(ctx);
    closeStore = floor.close;
    app.get(ROUTES.read, async () => `user ${(await floor.read()) === null ? 0 : 1}`);
  } else if (ctx.variant === "ours-redis" || ctx.variant === "ours-memcached") {
    const { store, close } = await ourStore(ctx);
    const { fastifySession } = (await library()).fastify;
    closeStore = close;
    await app.register(fastifySession, ourOptions(store));
    const session = (request: FastifyRequest) => request.session as unknown as BenchSession;
    app.post(ROUTES.login, async (request) => {
      await session(request).regenerate();
      session(request).userId = newUserId();
      return "ok";
    });
    app.get(ROUTES.read, async (request) => `user ${session(request).userId}`);
    app.post(ROUTES.write, async (request) => {
      const s = session(request);
      s.counter = (s.counter ?? 0) + 1;
      return String(s.counter);
    });
    app.get(ROUTES.anonymous, async () => "hello");
  } else {
    // @fastify/session with connect-redis, as the @fastify/session README shows for a Redis store;
    // saveUninitialized off. `rolling` (its default, true) is how it makes activity extend the
    // session: it saves the session (a SET) and re-sends the cookie on every request. The "-fixed"
    // variant turns it off. The store TTL (connect-redis `ttl`) is the idle timeout.
    const client = createNodeRedisClient({ url: ctx.redisUrl });
    client.on("error", () => undefined);
    await client.connect();
    closeStore = async () => client.destroy();
    await app.register(fastifyCookie);
    await app.register(fastifyPeerSession, {
      secret: SECRET,
      cookieName: "sessionId",
      cookie: { httpOnly: true, sameSite: "lax", secure: false },
      saveUninitialized: false,
      rolling: ctx.variant === "peer-redis",
      store: new ConnectRedisStore({ client, prefix: ctx.prefix, ttl: IDLE_TTL }),
    });
    const session = (request: FastifyRequest) => (request as unknown as { session: PeerSession }).session;
    app.post(ROUTES.login, async (request) => {
      await new Promise<void>((resolve, reject) => session(request).regenerate((err) => (err ? reject(err) : resolve())));
      session(request).userId = newUserId();
      return "ok";
    });
    app.get(ROUTES.read, async (request) => `user ${String(session(request).userId)}`);
    app.post(ROUTES.write, async (request) => {
      const s = session(request);
      s.counter = ((s.counter as number | undefined) ?? 0) + 1;
      return String(s.counter);
    });
    app.get(ROUTES.anonymous, async () => "hello");
  }

  await app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    port,
    async close() {
      await app.close();
      await closeStore();
    },
  };
}
