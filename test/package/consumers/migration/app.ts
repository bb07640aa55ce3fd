// Step 1 of the migration: the app now uses shared-session/express in compat mode, while
// @types/express-session is still in devDependencies (its global `req.session` type is in the program).
import express from "express";
import { expressSession } from "shared-session/express";
import { RedisStore, createRedisClient } from "shared-session/redis";

const app = express();
export function sessions() {
  return expressSession({
    store: new RedisStore({ client: createRedisClient(process.env.REDIS_URL) }),
    secret: "a-secret-of-at-least-32-characters!",
    compat: "express-session",
  });
}
app.post("/login", async (req, res) => {
  await req.session.regenerate();
  req.session.userId = 1;
  res.sendStatus(204);
});
console.log(`ok ${typeof sessions}`);
