// node:http with the framework-agnostic core: load at the start, commit before the response.
// Any framework binds the same way. Run: REDIS_URL=redis://127.0.0.1:6379 npm run example:http
import { createServer } from "node:http";
import { URL } from "node:url";
import { createSessionManager, StoreUnavailableError } from "shared-session";
import { announce, closeOnSignal, cookieName, host, page, parseForm, port, secret, storeFromEnv, trustProxy, whoami } from "./shared.mjs";

const sessions = createSessionManager({ store: storeFromEnv(), secret, name: cookieName });

// HTTPS as the client sees it: behind a TLS-terminating proxy (TRUST_PROXY=1), as the proxy says.
const isHttps = (req) => (trustProxy ? req.headers["x-forwarded-proto"]?.split(",")[0].trim() === "https" : Boolean(req.socket.encrypted));

async function readBody(req) {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}

async function handle(req, res, session) {
  const url = new URL(req.url, "http://localhost");
  if (req.method === "GET" && url.pathname === "/") return [200, "text/html", page("node:http", session)];
  if (req.method === "GET" && url.pathname === "/me") return [200, "application/json", JSON.stringify(whoami(session))];
  if (req.method === "POST" && url.pathname === "/login") {
    const { user } = parseForm(await readBody(req));
    if (!user) return [400, "text/plain", "user is required"];
    await session.regenerate(); // a new id at login: fixation defence
    session.user = user;
    session.count = 0;
    return [303, "/"];
  }
  if (req.method === "POST" && url.pathname === "/count") {
    if (!session.user) return [401, "text/plain", "log in first"];
    session.count = (session.count ?? 0) + 1;
    return [303, "/"];
  }
  if (req.method === "POST" && url.pathname === "/logout") {
    await session.destroy();
    return [303, "/"];
  }
  return [404, "text/plain", "not found"];
}

const server = createServer(async (req, res) => {
  try {
    const session = await sessions.load(req.headers.cookie, { secure: isHttps(req) });
    const [status, typeOrLocation, body] = await handle(req, res, session);
    const { setCookie } = await sessions.commit(session); // before the response: the write is in the store
    if (setCookie) res.setHeader("Set-Cookie", setCookie);
    if (status === 303) res.writeHead(303, { Location: typeOrLocation }).end();
    else res.writeHead(status, { "Content-Type": `${typeOrLocation}; charset=utf-8` }).end(body);
  } catch (err) {
    if (err instanceof StoreUnavailableError) {
      res.writeHead(503, { "Retry-After": String(err.retryAfter), "Content-Type": "text/plain" }).end("session store unavailable");
    } else {
      console.error(err);
      res.writeHead(500).end();
    }
  }
});

server.listen(port, host, () => announce("node:http", server));
closeOnSignal(() => new Promise((resolve) => server.close(resolve)));
