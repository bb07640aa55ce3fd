/**
 * Load generation (autocannon, in the parent process) and session set-up over plain HTTP.
 */
import { request as httpRequest } from "node:http";
import autocannon from "autocannon";
import { ROUTES } from "./apps/common.js";
import type { Scenario } from "./config.js";

/** One measured run. */
export interface LoadResult {
  /** Completed requests per second. */
  readonly rps: number;
  /** Latency percentiles, milliseconds. */
  readonly p50: number;
  readonly p99: number;
  /** Requests completed / sent (sent includes those in flight when the time was up). */
  readonly completed: number;
  readonly sent: number;
  /** Non-2xx answers, socket errors and timeouts: any of them makes the run suspect. */
  readonly failures: number;
  readonly seconds: number;
}

const METHOD: Record<Scenario, "GET" | "POST"> = { read: "GET", write: "POST", anonymous: "GET", login: "POST" };

/** The cookie header a response's `Set-Cookie` lines make (every cookie, e.g. koa-session's `.sig`). */
export function cookieHeaderOf(setCookie: string | string[] | undefined): string | undefined {
  if (setCookie === undefined) return undefined;
  const lines = Array.isArray(setCookie) ? setCookie : [setCookie];
  const pairs = lines.map((line) => line.split(";", 1)[0]!.trim()).filter((pair) => !/=$/.test(pair));
  return pairs.length > 0 ? pairs.join("; ") : undefined;
}

/** One request; resolves with status, body and the `Set-Cookie` lines. */
export function send(port: number, method: string, path: string, cookie?: string): Promise<{ status: number; body: string; setCookie: string[] }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers: cookie ? { cookie } : {}, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, setCookie: res.headers["set-cookie"] ?? [] }));
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * Log in `count` times (no cookie) and return one cookie header per new session. Checks that each
 * session reads back, so a misconfigured app fails here and not as a fast benchmark of errors.
 */
export async function createSessions(port: number, count: number): Promise<string[]> {
  const cookies: string[] = [];
  const parallel = 8;
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        next++;
        const { status, setCookie } = await send(port, "POST", ROUTES.login);
        const cookie = cookieHeaderOf(setCookie);
        if (status !== 200 || cookie === undefined) throw new Error(`bench: login answered ${status} with Set-Cookie ${JSON.stringify(setCookie)}`);
        cookies.push(cookie);
      }
    }),
  );
  for (const cookie of [cookies[0]!, cookies[cookies.length - 1]!]) {
    const { status, body } = await send(port, "GET", ROUTES.read, cookie);
    if (status !== 200 || !/^user \d+$/.test(body) || body === "user 0") {
      throw new Error(`bench: a session made by login does not read back (GET /read → ${status} ${JSON.stringify(body)})`);
    }
  }
  return cookies;
}

/**
 * Drive `scenario` for `seconds` with `connections` keep-alive connections. Read and write give each
 * connection its own cookie from `cookies` (connection i → cookie i), so every connection is a
 * different user; anonymous and login send none.
 */
export async function load(port: number, scenario: Scenario, options: { connections: number; seconds: number; cookies?: readonly string[] }): Promise<LoadResult> {
  const cookies = scenario === "read" || scenario === "write" ? (options.cookies ?? []) : [];
  if ((scenario === "read" || scenario === "write") && cookies.length === 0) throw new Error(`bench: ${scenario} needs session cookies`);
  let connection = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}${ROUTES[scenario]}`,
    method: METHOD[scenario],
    connections: options.connections,
    duration: options.seconds,
    // Each connection (autocannon client) takes the next cookie once, when it is created.
    setupClient: (client) => {
      if (cookies.length > 0) client.setHeaders({ cookie: cookies[connection++ % cookies.length]! });
    },
  });
  const seconds = result.duration;
  return {
    rps: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    completed: result.requests.total,
    sent: (result.requests as { sent?: number }).sent ?? result.requests.total,
    failures: result.non2xx + result.errors + result.timeouts,
    seconds,
  };
}
