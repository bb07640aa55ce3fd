import { createServer } from "node:http";
import Koa, { type Context } from "koa";
import { IDLE_TTL, SECRET } from "../config.js";
import { library } from "../library.js";
import { floorRead, newUserId, ourOptions, ourStore, ROUTES, serve, type AppContext, type BenchSession, type RunningApp } from "./common.js";
import { koaRedis, koaSession as peerSession, type KoaPeerSession } from "./peers.js";

/** The four routes, dispatched by hand (no router dependency) the same way in every variant. */
function route(ctx: Context): keyof typeof ROUTES | undefined {
  const { method, path } = ctx;
  if (path === ROUTES.read && method === "GET") return "read";
  if (path === ROUTES.write && method === "POST") return "write";
  if (path === ROUTES.anonymous && method === "GET") return "anonymous";
  if (path === ROUTES.login && method === "POST") return "login";
  return undefined;
}

/** Koa 3 app for one variant. */
export async function startKoa(ctx: AppContext): Promise<RunningApp> {
  const app = new Koa();
  let closeStore = async (): Promise<void> => undefined;

  if (ctx.variant === "bare") {
    app.use((c) => {
      const r = route(c);
      if (r === "login") c.body = "ok";
      else if (r === "read") c.body = "user 0";
      else if (r === "write") c.body = "1";
      else if (r === "anonymous") c.body = "hello";
    });
  } else if (ctx.variant === "floor-redis") {
    const floor = await floorRead(ctx);
    closeStore = floor.close;
    app.use(async (c) => {
      if (route(c) === "read") c.body = `user ${(await floor.read()) === null ? 0 : 1}`;
    });
  } else if (ctx.variant === "ours-redis" || ctx.variant === "ours-memcached") {
    const { store, close } = await ourStore(ctx);
    const { koaSession } = (await library()).koa;
    closeStore = close;
    app.use(koaSession(ourOptions(store)));
    app.use(async (c) => {
      const r = route(c);
      if (r === "anonymous") {
        c.body = "hello";
        return;
      }
      const session = c.session as unknown as BenchSession;
      if (r === "login") {
        await session.regenerate();
        // regenerate() put a new session object in ctx.session: read it again.
        (c.session as unknown as BenchSession).userId = newUserId();
        c.body = "ok";
      } else if (r === "read") {
        c.body = `user ${session.userId}`;
      } else if (r === "write") {
        session.counter = (session.counter ?? 0) + 1;
        c.body = String(session.counter);
      }
    });
  } else {
    // koa-session with koa-redis as their READMEs show (signed cookies through app.keys). The store
    // TTL is maxAge. `rolling: true` is koa-session's way to make activity extend the session: it
    // rewrites the session and re-sends the cookie on every request; the "-fixed" variant turns it
    // off (the session then lives 24 h from its last write, whatever the activity).
    app.keys = [SECRET];
    const store = koaRedis({ url: ctx.redisUrl });
    closeStore = async () => store.client.disconnect();
    app.use(
      peerSession(
        {
          key: "koa.sess",
          maxAge: IDLE_TTL * 1000,
          rolling: ctx.variant === "peer-redis",
          renew: false,
          httpOnly: true,
          signed: true,
          sameSite: "lax",
          prefix: ctx.prefix,
          store,
        },
        app,
      ),
    );
    app.use(async (c) => {
      const r = route(c);
      if (r === "anonymous") {
        c.body = "hello";
        return;
      }
      const session = (c as unknown as { session: KoaPeerSession }).session;
      if (r === "login") {
        await session.regenerate();
        session.userId = newUserId();
        c.body = "ok";
      } else if (r === "read") {
        c.body = `user ${String(session.userId)}`;
      } else if (r === "write") {
        session.counter = ((session.counter as number | undefined) ?? 0) + 1;
        c.body = String(session.counter);
      }
    });
  }

  return serve(createServer(app.callback()), closeStore);
}
