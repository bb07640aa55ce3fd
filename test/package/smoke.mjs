// ESM consumers: named imports from every entry.
import assert from "node:assert/strict";
import { createSessionManager, SessionConfigError } from "shared-session";
import { MemoryStore } from "shared-session/testing";
await import("shared-session/redis");
await import("shared-session/memcached");
await import("shared-session/express");
await import("shared-session/koa");
await import("shared-session/fastify");
const manager = createSessionManager({ store: new MemoryStore({ quiet: true }), secret: "x".repeat(32) });
const session = await manager.load(undefined, { secure: true });
session.userId = 1;
const { setCookie } = await manager.commit(session);
assert.match(setCookie, /; Secure$/);
assert.throws(() => createSessionManager({ store: new MemoryStore({ quiet: true }), secret: "short" }), SessionConfigError);
console.log("esm ok");
