// Fastify with shared-session: any process can serve any request, the session lives in the store.
// Run: REDIS_URL=redis://127.0.0.1:6379 npm run example:fastify  (or MEMCACHED_SERVERS=127.0.0.1:11211)
import Fastify from "fastify";
import { fastifySession } from "shared-session/fastify";
import { announce, closeOnSignal, cookieName, host, page, parseForm, port, secret, storeFromEnv, trustProxy, whoami } from "./shared.mjs";

const app = Fastify({ trustProxy }); // request.protocol from X-Forwarded-Proto: the cookie gets Secure
await app.register(fastifySession, { store: storeFromEnv(), secret, name: cookieName });
// HTML forms post urlencoded bodies (@fastify/formbody does the same).
app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_request, body, done) => done(null, parseForm(body)));

app.get("/", async (request, reply) => reply.type("text/html").send(page("fastify", request.session)));

app.get("/me", async (request) => whoami(request.session));

app.post("/login", async (request, reply) => {
  const user = request.body?.user;
  if (!user) return reply.code(400).send("user is required");
  await request.session.regenerate(); // a new id at login: fixation defence
  request.session.set("user", user); // or request.session.user = user
  request.session.set("count", 0);
  return reply.redirect("/", 303); // sent only once the session is in the store
});

app.post("/count", async (request, reply) => {
  if (!request.session.user) return reply.code(401).send("log in first");
  request.session.count += 1;
  return reply.redirect("/", 303);
});

app.post("/logout", async (request, reply) => {
  await request.session.destroy();
  return reply.redirect("/", 303);
});

await app.listen({ port, host });
announce("fastify", app.server);
closeOnSignal(() => app.close());
