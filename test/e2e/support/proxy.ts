/**
 * A tiny reverse proxy: one origin for the browser in front of one or more app processes,
 * forwarding requests to them in turn (round robin), over HTTP or terminating TLS.
 * It records every exchange so tests can see which process served what, and with which cookies.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";

/** One request the proxy forwarded. */
export interface Exchange {
  method: string;
  path: string;
  /** Index of the backend that served it. */
  backend: number;
  /** The `Cookie` header the browser sent, if any. */
  cookie: string | undefined;
  /** The `Origin` header the browser sent, if any. */
  origin: string | undefined;
  status: number;
  /** `Set-Cookie` headers as the backend sent them (before any rewrite). */
  setCookie: string[];
}

export interface ProxyOptions {
  /** Terminate TLS with this key and certificate (PEM); the backends are still spoken to over HTTP. */
  tls?: { key: string; cert: string };
  /**
   * Rewrites each `Set-Cookie` header on its way to the browser (to show what a browser does with a
   * cookie our library would never send).
   */
  rewriteSetCookie?: (value: string) => string;
}

export interface RunningProxy {
  /** `http(s)://127.0.0.1:<port>`: the one origin the browser sees. */
  readonly url: string;
  readonly port: number;
  /** Every forwarded exchange, oldest first. */
  readonly exchanges: Exchange[];
  close(): Promise<void>;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) are never forwarded.
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"]);

function forwardable(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

/** Starts the proxy on a free port of 127.0.0.1, forwarding to `backends` (base URLs) in turn. */
export async function startProxy(backends: readonly string[], options: ProxyOptions = {}): Promise<RunningProxy> {
  if (backends.length === 0) throw new Error("startProxy needs at least one backend");
  const exchanges: Exchange[] = [];
  const scheme = options.tls ? "https" : "http";
  let next = 0;

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    // The browser asks for a favicon on its own; answering it here keeps the turn order on the pages.
    if (req.url === "/favicon.ico") {
      res.writeHead(404).end();
      return;
    }
    const backend = next;
    next = (next + 1) % backends.length;
    const target = new URL(req.url ?? "/", backends[backend]);
    const headers = forwardable(req.headers);
    headers["x-forwarded-for"] = req.socket.remoteAddress ?? "127.0.0.1";
    headers["x-forwarded-proto"] = scheme;
    headers["x-forwarded-host"] = req.headers.host ?? "";
    const upstream = http.request(target, { method: req.method, headers, agent: false }, (answer) => {
      const raw = answer.headers["set-cookie"] ?? [];
      exchanges.push({
        method: req.method ?? "GET",
        path: req.url ?? "/",
        backend,
        cookie: req.headers.cookie,
        origin: req.headers.origin,
        status: answer.statusCode ?? 0,
        setCookie: [...raw],
      });
      const out = forwardable(answer.headers);
      if (raw.length > 0) out["set-cookie"] = options.rewriteSetCookie ? raw.map(options.rewriteSetCookie) : raw;
      res.writeHead(answer.statusCode ?? 502, out);
      answer.pipe(res);
    });
    upstream.on("error", (error) => {
      if (!res.headersSent) res.writeHead(502, { "Content-Type": "text/plain" });
      res.end(`proxy: backend ${backend} failed: ${error.message}`);
    });
    req.pipe(upstream);
  };

  const server = options.tls ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, handler) : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    exchanges,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
