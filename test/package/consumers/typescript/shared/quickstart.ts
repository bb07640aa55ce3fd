// The README's TypeScript quick start, verbatim below this comment (test/package/readme.mjs
// checks the README holds it): compiled under every module setting, never run (it would listen).
import express from "express";
import { RedisStore, createRedisClient } from "shared-session/redis";
import { expressSession } from "shared-session/express";

const secret = process.env.SESSION_SECRET;
if (!secret) throw new Error("SESSION_SECRET is not set");
const redis = createRedisClient(process.env.REDIS_URL); // throws at boot when REDIS_URL is unset
redis.on("error", (err: Error) => console.error("redis:", err.message));

const app = express();
const sessions = expressSession({ store: new RedisStore({ client: redis }), secret });
app.use(sessions);
app.post("/login", async (req, res) => {
  await req.session.regenerate(); // a new id at login
  req.session.userId = 42; // a number, as SessionData says (session.d.ts)
  res.redirect(303, "/");
});
app.get("/", (req, res) => {
  res.json({ userId: req.session.userId ?? null });
});

// Fail fast: exit at boot when Redis cannot be reached (wrong URL, password, no master...).
sessions.manager.ready({ timeout: 10 }).then(
  () => app.listen(3000),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
