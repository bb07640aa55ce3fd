// Koa with shared-session: any process can serve any request, the session lives in the store.
// Run: REDIS_URL=redis://127.0.0.1:6379 npm run example:koa  (or MEMCACHED_SERVERS=127.0.0.1:11211)
import Koa from "koa";
import { koaSession } from "shared-session/koa";
import { announce, closeOnSignal, cookieName, host, page, parseForm, port, secret, storeFromEnv, trustProxy, whoami } from "./shared.mjs";

const app = new Koa();
app.proxy = trustProxy; // ctx.secure from X-Forwarded-Proto: the cookie gets Secure
app.use(koaSession({ store: storeFromEnv(), secret, name: cookieName }));

async function readForm(ctx) {
  let text = "";
  for await (const chunk of ctx.req) text += chunk;
  return parseForm(text);
}

app.use(async (ctx) => {
  const route = `${ctx.method} ${ctx.path}`;
  if (route === "GET /") {
    ctx.type = "html";
    ctx.body = page("koa", ctx.session);
  } else if (route === "GET /me") {
    ctx.body = whoami(ctx.session);
  } else if (route === "POST /login") {
    const { user } = await readForm(ctx);
    ctx.assert(user, 400, "user is required");
    await ctx.session.regenerate(); // a new id at login: fixation defence
    ctx.session.user = user;
    ctx.session.count = 0;
    ctx.status = 303;
    ctx.redirect("/"); // sent only once the session is in the store
  } else if (route === "POST /count") {
    ctx.assert(ctx.session.user, 401, "log in first");
    ctx.session.count += 1;
    ctx.status = 303;
    ctx.redirect("/");
  } else if (route === "POST /logout") {
    ctx.session = null; // koa-session's idiom; `await ctx.session.destroy()` works too
    ctx.status = 303;
    ctx.redirect("/");
  }
});

const server = app.listen(port, host, () => announce("koa", server));
closeOnSignal(() => new Promise((resolve) => server.close(resolve)));
