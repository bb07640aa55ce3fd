import { createServer } from "node:http";
import express, { type Request, type RequestHandler } from "express";
import { IDLE_TTL, SECRET } from "../config.js";
import { library } from "../library.js";
import { floorRead, newUserId, ourOptions, ourStore, ROUTES, serve, type AppContext, type BenchSession, type RunningApp } from "./common.js";
import { connectMemcached, ConnectRedisStore, createNodeRedisClient, expressSession as peerSession, type ExpressSessionStore, type PeerSession } from "./peers.js";

/** Express 5 app for one variant: the same four routes in each. */
export async function startExpress(ctx: AppContext): Promise<RunningApp> {
  const app = express();
  let closeStore = async (): Promise<void> => undefined;

  if (ctx.variant === "bare") {
    app.post(ROUTES.login, (_req, res) => void res.send("ok"));
    app.get(ROUTES.read, (_req, res) => void res.send("user 0"));
    app.post(ROUTES.write, (_req, res) => void res.send("1"));
    app.get(ROUTES.anonymous, (_req, res) => void res.send("hello"));
  } else if (ctx.variant === "floor-redis") {
    const floor = await floorRead(ctx);
    closeStore = floor.close;
    app.get(ROUTES.read, async (_req, res) => void res.send(`user ${(await floor.read()) === null ? 0 : 1}`));
  } else if (ctx.variant === "ours-redis" || ctx.variant === "ours-memcached") {
    const { store, close } = await ourStore(ctx);
    const { expressSession } = (await library()).express;
    closeStore = close;
    app.use(expressSession(ourOptions(store)));
    const session = (req: Request) => req.session as unknown as BenchSession;
    app.post(ROUTES.login, async (req, res) => {
      await session(req).regenerate();
      session(req).userId = newUserId();
      res.send("ok");
    });
    app.get(ROUTES.read, (req, res) => void res.send(`user ${session(req).userId}`));
    app.post(ROUTES.write, (req, res) => {
      const s = session(req);
      s.counter = (s.counter ?? 0) + 1;
      res.send(String(s.counter));
    });
    app.get(ROUTES.anonymous, (_req, res) => void res.send("hello"));
  } else {
    // express-session as its README recommends for production: an external store, resave and
    // saveUninitialized off. The store TTL is the idle timeout; express-session touches the store
    // (connect-redis: EXPIRE; connect-memcached: a full SET) on every request that changes nothing,
    // so activity extends it, as ours does. No cookie maxAge: a browser-session cookie, as ours.
    let store: ExpressSessionStore;
    if (ctx.variant === "peer-memcached") {
      const MemcachedStore = connectMemcached(peerSession);
      const memcached = new MemcachedStore({ hosts: [ctx.memcached], prefix: ctx.prefix, ttl: IDLE_TTL });
      store = memcached;
      closeStore = async () => memcached.client.end();
    } else {
      const client = createNodeRedisClient({ url: ctx.redisUrl });
      client.on("error", () => undefined);
      await client.connect();
      store = new ConnectRedisStore({ client, prefix: ctx.prefix, ttl: IDLE_TTL });
      closeStore = async () => client.destroy();
    }
    app.use(
      peerSession({
        store,
        secret: SECRET,
        resave: false,
        saveUninitialized: false,
        rolling: false,
        cookie: { httpOnly: true, sameSite: "lax", secure: false },
      }) as RequestHandler,
    );
    const session = (req: Request) => (req as unknown as { session: PeerSession }).session;
    app.post(ROUTES.login, (req, res, next) => {
      session(req).regenerate((err) => {
        if (err) return next(err);
        session(req).userId = newUserId();
        res.send("ok");
      });
    });
    app.get(ROUTES.read, (req, res) => void res.send(`user ${String(session(req).userId)}`));
    app.post(ROUTES.write, (req, res) => {
      const s = session(req);
      s.counter = ((s.counter as number | undefined) ?? 0) + 1;
      res.send(String(s.counter));
    });
    app.get(ROUTES.anonymous, (_req, res) => void res.send("hello"));
  }

  return serve(createServer(app), closeStore);
}
