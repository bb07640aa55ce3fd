// Shared by every example: the store from the environment, the settings, and the page they serve.
import { URLSearchParams } from "node:url";
import { RedisStore, createRedisClient } from "shared-session/redis";
import { MemcachedStore, createMemcachedClient } from "shared-session/memcached";

/** Closes the store's client on shutdown (the stores never close a client they were given). */
let closeClient = async () => {};

/** A RedisStore when REDIS_URL is set, else a MemcachedStore when MEMCACHED_SERVERS (host:port,host:port) is set. */
export function storeFromEnv() {
  if (process.env.REDIS_URL) {
    const client = createRedisClient(process.env.REDIS_URL);
    client.on("error", (err) => console.error(`redis: ${err.message}`)); // reconnects by itself
    closeClient = async () => void (await client.quit().catch(() => client.disconnect()));
    return new RedisStore({ client });
  }
  if (process.env.MEMCACHED_SERVERS) {
    const client = createMemcachedClient(process.env.MEMCACHED_SERVERS);
    closeClient = async () => client.close();
    return new MemcachedStore({ client });
  }
  console.error("Set REDIS_URL (e.g. redis://127.0.0.1:6379) or MEMCACHED_SERVERS (e.g. 127.0.0.1:11211).");
  process.exit(2);
}

export const secret = process.env.SESSION_SECRET ?? "example-secret-change-me-it-must-be-32+chars";
/** Cookie name, e.g. `__Host-sid` behind HTTPS; the library's default (`sid`) when unset. */
export const cookieName = process.env.SESSION_COOKIE_NAME || undefined;
/** `TRUST_PROXY=1`: the app sits behind one TLS-terminating proxy whose X-Forwarded-* headers are believed. */
export const trustProxy = process.env.TRUST_PROXY === "1";
/** `PORT=0` picks a free port (the URL printed at start says which). */
export const port = Number(process.env.PORT ?? 3000);
export const host = process.env.HOST ?? "127.0.0.1";

/** Print the URL once `server` (a node:http server) listens. */
export function announce(framework, server) {
  const { port: actual } = server.address();
  console.log(`${framework} example on http://${host.includes(":") ? `[${host}]` : host}:${actual}`);
}

/** On SIGINT/SIGTERM: run `close` (stop accepting, finish in-flight requests), close the store client, exit 0. */
export function closeOnSignal(close) {
  const shutdown = async () => {
    try {
      await close();
      await closeClient();
      process.exit(0);
    } catch (err) {
      console.error(err);
      process.exit(1);
    }
  };
  for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, shutdown);
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** What `GET /me` answers: who is signed in and their count. */
export function whoami(session) {
  return { user: session.user ?? null, count: session.count ?? 0 };
}

/** The page every example serves: a login form, or the user, a counter and a logout button. */
export function page(framework, session) {
  const body = session.user
    ? `<p id="who">Signed in as <b>${escape(session.user)}</b></p>
<p>Count: <b id="count">${session.count ?? 0}</b></p>
<form method="post" action="/count"><button id="increment">Count</button></form>
<form method="post" action="/logout"><button id="logout">Log out</button></form>`
    : `<p id="who">Not signed in</p>
<form method="post" action="/login"><input id="user" name="user" placeholder="name" required><button id="login">Log in</button></form>`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>shared-session · ${framework}</title></head>
<body><h1>shared-session · ${framework}</h1><p>Served by process ${process.pid}</p>${body}</body></html>`;
}

/** Parse an urlencoded form body into a plain object. */
export function parseForm(text) {
  return Object.fromEntries(new URLSearchParams(text));
}
