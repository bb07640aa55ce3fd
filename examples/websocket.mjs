// A WebSocket (the `ws` package) on the same sessions as the HTTP app: the upgrade request carries the
// session cookie, and the manager reads it there. Log in over HTTP, then open ws://…/socket: a signed-in
// cookie gets its user; a missing, forged or logged-out cookie is refused with 401 before any socket.
// Run: REDIS_URL=redis://127.0.0.1:6379 npm run build && node examples/websocket.mjs
import express from "express";
import { WebSocketServer } from "ws";
import { expressSession } from "shared-session/express";
import { announce, closeOnSignal, cookieName, host, port, secret, storeFromEnv, trustProxy, whoami } from "./shared.mjs";

const app = express();
if (trustProxy) app.set("trust proxy", 1);
const sessions = expressSession({ store: storeFromEnv(), secret, name: cookieName });
app.use(sessions);
app.use(express.urlencoded({ extended: false }));

app.get("/me", (req, res) => res.json(whoami(req.session)));
app.post("/login", async (req, res) => {
  if (!req.body?.user) return res.status(400).send("user is required");
  await req.session.regenerate();
  req.session.user = req.body.user;
  res.redirect(303, "/me");
});
app.post("/logout", async (req, res) => {
  await req.session.destroy();
  res.redirect(303, "/me");
});

const server = app.listen(port, host, () => announce("websocket", server));
const sockets = new WebSocketServer({ noServer: true });

/** The session of an upgrade (or any raw) request: the same cookie check as every HTTP request. */
function sessionOf(req) {
  const secure = req.socket.encrypted === true || (trustProxy && req.headers["x-forwarded-proto"] === "https");
  return sessions.manager.load(req.headers.cookie, { secure });
}

/** Answer the upgrade with a plain HTTP status and close: no WebSocket is made. */
function refuse(socket, status, text) {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

server.on("upgrade", async (req, socket, head) => {
  socket.on("error", () => socket.destroy());
  if (new URL(req.url, "http://x").pathname !== "/socket") return refuse(socket, 404, "Not Found");
  let session;
  try {
    session = await sessionOf(req);
  } catch {
    return refuse(socket, 503, "Service Unavailable"); // the store is down (StoreUnavailableError)
  }
  if (!session.user) return refuse(socket, 401, "Unauthorized"); // no cookie, a forged one, or logged out
  sockets.handleUpgrade(req, socket, head, (ws) => {
    ws.send(JSON.stringify({ hello: session.user }));
    // The session can end while the socket lives (a logout in another tab, on another process):
    // each message reads it again, one store read, and a socket whose session is gone is closed.
    ws.on("message", async (data) => {
      const now = await sessionOf(req).catch(() => null);
      if (!now?.user) return ws.close(4401, "session ended");
      ws.send(JSON.stringify({ user: now.user, echo: String(data) }));
    });
  });
});

closeOnSignal(async () => {
  for (const client of sockets.clients) client.terminate();
  await new Promise((resolve) => server.close(resolve));
});
