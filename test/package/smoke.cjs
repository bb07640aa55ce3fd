// CommonJS consumers: every entry can be required and shares one core (instanceof works across entries).
const assert = require("node:assert/strict");
const core = require("shared-session");
const testing = require("shared-session/testing");
const store = new testing.MemoryStore({ quiet: true });
for (const entry of ["redis", "memcached", "express", "koa", "fastify"]) require(`shared-session/${entry}`);
assert.equal(typeof core.createSessionManager, "function");
// The conformance suite needs vitest, which cannot be require()d: from CommonJS it says so when called.
const { runStoreConformance } = require("shared-session/testing/conformance");
assert.throws(() => runStoreConformance({ name: "x", createStore: () => store }), /import shared-session\/testing\/conformance from an ESM test file/);
const manager = core.createSessionManager({ store, secret: "x".repeat(32) });
(async () => {
  const session = await manager.load(undefined, { secure: false });
  session.userId = 1;
  const { setCookie } = await manager.commit(session);
  assert.match(setCookie, /^sid=/);
  assert.throws(() => core.createSessionManager({ store, secret: "short" }), core.SessionConfigError);
  console.log("cjs ok");
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
