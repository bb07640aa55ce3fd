// Express with shared-session: any process can serve any request, the session lives in the store.
// Run: REDIS_URL=redis://127.0.0.1:6379 npm run example:express  (or MEMCACHED_SERVERS=127.0.0.1:11211)
import express from "express";
import { expressSession } from "shared-session/express";
import { announce, closeOnSignal, cookieName, host, page, port, secret, storeFromEnv, trustProxy, whoami } from "./shared.mjs";

const app = express();
if (trustProxy) app.set("trust proxy", 1); // req.secure from X-Forwarded-Proto: the cookie gets Secure
app.use(expressSession({ store: storeFromEnv(), secret, name: cookieName }));
app.use(express.urlencoded({ extended: false }));

app.get("/", (req, res) => {
  res.type("html").send(page("express", req.session));
});

app.get("/me", (req, res) => {
  res.json(whoami(req.session));
});

app.post("/login", async (req, res) => {
  if (!req.body?.user) return res.status(400).send("user is required");
  await req.session.regenerate(); // a new id at login: fixation defence
  req.session.user = req.body.user;
  req.session.count = 0;
  res.redirect(303, "/"); // sent only once the session is in the store
});

app.post("/count", (req, res) => {
  if (!req.session.user) return res.status(401).send("log in first");
  req.session.count += 1;
  res.redirect(303, "/");
});

app.post("/logout", async (req, res) => {
  await req.session.destroy();
  res.redirect(303, "/");
});

const server = app.listen(port, host, () => announce("express", server));
closeOnSignal(() => new Promise((resolve) => server.close(resolve)));
