// Shared by every example: the store from the environment, the secret, and the page they serve.
import { RedisStore, createRedisClient } from "shared-session/redis";
import { MemcachedStore, createMemcachedClient } from "shared-session/memcached";

/** A RedisStore when REDIS_URL is set, else a MemcachedStore when MEMCACHED_SERVERS is set. */
export function storeFromEnv() {
  if (process.env.REDIS_URL) return new RedisStore({ client: createRedisClient(process.env.REDIS_URL) });
  if (process.env.MEMCACHED_SERVERS) return new MemcachedStore({ client: createMemcachedClient(process.env.MEMCACHED_SERVERS) });
  console.error("Set REDIS_URL (e.g. redis://127.0.0.1:6379) or MEMCACHED_SERVERS (e.g. 127.0.0.1:11211).");
  process.exit(2);
}

export const secret = process.env.SESSION_SECRET ?? "example-secret-change-me-it-must-be-32+chars";
export const port = Number(process.env.PORT ?? 3000);

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

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
