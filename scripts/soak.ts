/**
 * Soak: bounded concurrent load against one app process on loopback for a bounded time, while the
 * store is paused and resumed and stopped and started again. Then it reports what users and
 * operators care about, and exits non-zero when an invariant fails:
 *
 * - requests answered, by status (only 200 and 503 are acceptable; every 503 carries Retry-After);
 * - the slowest answer, and requests that got no answer within storeTimeout + 5 s (must be 0);
 * - sessions lost that were in the store before a fault (must be 0), and acknowledged writes lost
 *   (a read showing fewer visits than a 200 had confirmed; must be 0);
 * - the app process's memory before and after (after a forced GC), its unhandled rejections
 *   (must be 0) and its store client's queues at the end (must have drained).
 *
 *   npm run soak -- [--duration=75] [--concurrency=24] [--framework=express|koa|fastify]
 *                   [--store=redis|memcached] [--store-timeout=2] [--pause=4] [--down=2] [--cycle=20]
 *
 * Durations in seconds. Redis runs with `appendfsync always` so that a restart keeps what was
 * acknowledged; memcached keeps nothing across a restart, so with `--store=memcached` losses across a
 * restart are reported but expected (losses across a pause still fail the run).
 *
 * The app process is this same file run with `--serve` (the parent passes everything through the
 * environment). Servers come from the test-services module (Docker or the binaries on PATH).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { Agent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import type { SessionStore } from "../src/index.js";

type FrameworkName = "express" | "koa" | "fastify";
type StoreName = "redis" | "memcached";

interface Config {
  duration: number;
  concurrency: number;
  framework: FrameworkName;
  store: StoreName;
  storeTimeout: number;
  pause: number;
  down: number;
  cycle: number;
}

const SECRET = "soak-secret-soak-secret-soak-secret-0123";

function parseArgs(argv: readonly string[]): Config {
  const args = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (match) args.set(match[1]!, match[2] ?? "true");
  }
  const num = (name: string, fallback: number, min: number): number => {
    const value = args.has(name) ? Number(args.get(name)) : fallback;
    if (!Number.isFinite(value) || value < min) throw new Error(`--${name} must be a number >= ${min}, got ${args.get(name)}`);
    return value;
  };
  const framework = (args.get("framework") ?? "express") as FrameworkName;
  if (!["express", "koa", "fastify"].includes(framework)) throw new Error(`--framework must be express, koa or fastify, got ${framework}`);
  const store = (args.get("store") ?? "redis") as StoreName;
  if (!["redis", "memcached"].includes(store)) throw new Error(`--store must be redis or memcached, got ${store}`);
  return {
    duration: num("duration", 75, 10),
    concurrency: Math.floor(num("concurrency", 24, 1)),
    framework,
    store,
    storeTimeout: num("store-timeout", 2, 0.1),
    pause: num("pause", 4, 0.5),
    down: num("down", 2, 0.1),
    cycle: num("cycle", 20, 5),
  };
}

// ---------------------------------------------------------------------------------------------
// The app process
// ---------------------------------------------------------------------------------------------

interface AppStats {
  rss: number;
  heapUsed: number;
  unhandled: number;
  /** Store client queues: waiting for a connection, and sent awaiting an answer. */
  offline: number;
  pending: number;
  logs: Record<string, number>;
}

async function serve(): Promise<void> {
  const framework = process.env.SOAK_FRAMEWORK as FrameworkName;
  const storeName = process.env.SOAK_STORE as StoreName;
  const storeTimeout = Number(process.env.SOAK_STORE_TIMEOUT);
  const target = process.env.SOAK_TARGET!;
  let unhandled = 0;
  process.on("unhandledRejection", (reason) => {
    unhandled++;
    console.error("unhandled rejection in the app:", reason);
  });
  const logs: Record<string, number> = {};
  const logger = (entry: { event: string }): void => {
    logs[entry.event] = (logs[entry.event] ?? 0) + 1;
  };

  let queues: () => { offline: number; pending: number };
  let store: SessionStore;
  if (storeName === "redis") {
    const { createRedisClient, RedisStore } = await import("../adapters/redis.js");
    const client = createRedisClient(target);
    client.on("error", () => undefined);
    store = new RedisStore({ client });
    queues = () => ({
      offline: (client as unknown as { offlineQueue: { length: number } }).offlineQueue.length,
      pending: client.commandQueue.length,
    });
  } else {
    const { createMemcachedClient, MemcachedStore } = await import("../adapters/memcached.js");
    const client = createMemcachedClient(target.split(","));
    store = new MemcachedStore({ client });
    type MemjsServer = { responseCallbacks: Record<string, unknown>; connectCallbacks: unknown[] };
    const servers = (client as unknown as { servers: MemjsServer[] }).servers;
    queues = () => ({
      offline: servers.reduce((n, s) => n + s.connectCallbacks.length, 0),
      pending: servers.reduce((n, s) => n + Object.keys(s.responseCallbacks).length, 0),
    });
  }
  const options = { store, secret: SECRET, storeTimeout, logger };

  type Sess = Record<string, unknown> & { isNew: boolean; regenerate(): Promise<void> };
  // A route gets the request's session through a getter: on Express and Koa, regenerate() puts a new
  // object in req.session / ctx.session, so a route reads it again after regenerate().
  const routes: Record<string, (session: () => Sess) => Promise<unknown> | unknown> = {
    "GET /noop": () => ({ ok: true }),
    "GET /me": (session) => {
      const s = session();
      return { isNew: s.isNew, userId: s.userId ?? null, visits: s.visits ?? null };
    },
    "POST /visit": (session) => {
      const s = session();
      s.visits = (Number(s.visits) || 0) + 1;
      return { isNew: s.isNew, visits: s.visits };
    },
    "POST /login": async (session) => {
      await session().regenerate();
      const s = session();
      s.userId = 1;
      s.visits = 0;
      return { ok: true };
    },
  };
  const stats = (gc: boolean): AppStats => {
    if (gc) (globalThis as { gc?: () => void }).gc?.();
    const memory = process.memoryUsage();
    return { rss: memory.rss, heapUsed: memory.heapUsed, unhandled, ...queues(), logs };
  };

  let port: number;
  if (framework === "fastify") {
    const { default: Fastify } = await import("fastify");
    const { fastifySession } = await import("../src/frameworks/fastify.js");
    const app = Fastify();
    await app.register(fastifySession, options);
    for (const [key, route] of Object.entries(routes)) {
      const [method, url] = key.split(" ") as ["GET" | "POST", string];
      app.route({ method, url, handler: async (request) => route(() => request.session as unknown as Sess) });
    }
    app.get("/__stats", async (request) => stats((request.query as Record<string, string>).gc === "1"));
    await app.listen({ port: 0, host: "127.0.0.1" });
    port = (app.server.address() as AddressInfo).port;
  } else {
    let server: Server;
    if (framework === "express") {
      const { default: express } = await import("express");
      const { expressSession } = await import("../src/frameworks/express/index.js");
      const app = express();
      app.set("env", "test");
      app.get("/__stats", (req, res) => {
        res.json(stats(req.query.gc === "1"));
      });
      app.use(expressSession(options));
      for (const [key, route] of Object.entries(routes)) {
        const [method, path] = key.split(" ") as [string, string];
        app[method === "GET" ? "get" : "post"](path, async (req, res) => {
          res.json(await route(() => req.session as unknown as Sess));
        });
      }
      server = createServer(app);
    } else {
      const { default: Koa } = await import("koa");
      const { koaSession } = await import("../src/frameworks/koa.js");
      const app = new Koa();
      app.silent = true;
      app.use(async (ctx, next) => {
        if (ctx.path === "/__stats") ctx.body = stats(ctx.query.gc === "1");
        else await next();
      });
      app.use(koaSession(options));
      app.use(async (ctx) => {
        const route = routes[`${ctx.method} ${ctx.path}`];
        if (route !== undefined) ctx.body = await route(() => ctx.session as unknown as Sess);
      });
      server = createServer(app.callback());
    }
    port = await new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
  }
  process.stdout.write(`READY ${port}\n`);
}

// ---------------------------------------------------------------------------------------------
// The load generator and fault injector
// ---------------------------------------------------------------------------------------------

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request with a hard client-side bound; `null` when no answer came within it. */
function send(agent: Agent, port: number, method: string, path: string, cookie: string | undefined, boundMs: number): Promise<Answer | null> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: "127.0.0.1", port, method, path, agent, headers: cookie ? { cookie } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") });
      });
      res.on("error", () => {
        clearTimeout(timer);
        resolve(null);
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new Error("soak: no answer in time"));
      resolve(null);
    }, boundMs);
    req.on("error", () => {
      clearTimeout(timer);
      resolve(null);
    });
    req.end();
  });
}

interface Fault {
  kind: "pause" | "restart";
  start: number;
  end: number;
}

interface Faultable {
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

async function soak(config: Config): Promise<number> {
  const services = await import("../test/services/index.js");
  let target: string;
  let faultable: Faultable;
  let close: () => Promise<void>;
  if (config.store === "redis") {
    // Every acknowledged write on disk before the reply: a restart must lose nothing.
    const redis = await services.startRedis({ args: ["--appendonly", "yes", "--appendfsync", "always"] });
    target = redis.url;
    faultable = redis;
    close = () => redis.close();
  } else {
    const memcached = await services.startMemcached(3);
    target = memcached.servers.map((s) => s.address).join(",");
    faultable = memcached.servers[1]!;
    close = () => memcached.close();
  }

  const self = fileURLToPath(import.meta.url);
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, "--expose-gc", self, "--serve"], {
    stdio: ["ignore", "pipe", "inherit"],
    env: {
      ...process.env,
      SOAK_FRAMEWORK: config.framework,
      SOAK_STORE: config.store,
      SOAK_STORE_TIMEOUT: String(config.storeTimeout),
      SOAK_TARGET: target,
    },
  });
  let exitedEarly = false;
  child.on("exit", () => (exitedEarly = true));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8");
      const match = /READY (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once("exit", (code) => reject(new Error(`the app process exited with ${code} before it listened`)));
  });

  const boundMs = (config.storeTimeout + 5) * 1000;
  const agent = new Agent({ keepAlive: true, maxSockets: config.concurrency + 4 });
  const appStats = async (gc: boolean): Promise<AppStats> => {
    const answer = await send(agent, port, "GET", `/__stats${gc ? "?gc=1" : ""}`, undefined, 10_000);
    if (answer === null || answer.status !== 200) throw new Error("the app process did not answer /__stats");
    return JSON.parse(answer.body) as AppStats;
  };

  const byStatus = new Map<string, number>();
  let slowest = 0;
  let noAnswer = 0;
  let missingRetryAfter = 0;
  const lost = { pause: 0, restart: 0, none: 0 };
  let regressions = 0;
  const latencies: number[] = [];
  const faults: Fault[] = [];
  let stopping = false;

  const record = (answer: Answer | null, took: number): void => {
    if (answer === null) {
      noAnswer++;
      return;
    }
    byStatus.set(String(answer.status), (byStatus.get(String(answer.status)) ?? 0) + 1);
    slowest = Math.max(slowest, took);
    latencies.push(took);
    if (answer.status === 503 && answer.headers["retry-after"] === undefined) missingRetryAfter++;
  };
  const timed = async (method: string, path: string, cookie?: string): Promise<Answer | null> => {
    const started = performance.now();
    const answer = await send(agent, port, method, path, cookie, boundMs);
    record(answer, performance.now() - started);
    return answer;
  };
  /** Which fault a session that vanished after `since` went through. */
  const blame = (since: number): keyof typeof lost => {
    const now = performance.now();
    const seen = faults.filter((f) => f.start <= now && f.end >= since);
    if (seen.some((f) => f.kind === "restart")) return "restart";
    return seen.length > 0 ? "pause" : "none";
  };
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

  async function user(index: number): Promise<{ cookie: string | undefined; visits: number; confirmedAt: number }> {
    const me = { cookie: undefined as string | undefined, visits: 0, confirmedAt: 0 };
    let tick = index;
    while (!stopping) {
      tick++;
      if (me.cookie === undefined) {
        const answer = await timed("POST", "/login");
        const setCookie = answer?.headers["set-cookie"]?.find((c) => c.startsWith("sid="));
        if (answer?.status === 200 && setCookie) {
          me.cookie = setCookie.split(";")[0]!;
          me.visits = 0;
          me.confirmedAt = performance.now();
        } else await sleep(100);
        continue;
      }
      const op = tick % 10;
      if (op === 0) {
        await timed("GET", "/noop");
        continue;
      }
      const write = op <= 3;
      const since = me.confirmedAt;
      const answer = await timed(write ? "POST" : "GET", write ? "/visit" : "/me", me.cookie);
      if (answer === null) continue;
      if (answer.status !== 200) {
        await sleep(50 + Math.random() * 100);
        continue;
      }
      const body = JSON.parse(answer.body) as { isNew: boolean; visits: number | null };
      if (body.isNew) {
        // The store no longer has this session.
        lost[blame(since)]++;
        me.cookie = undefined;
        continue;
      }
      // A write that timed out may still land (the count can be higher), never lower than confirmed.
      if ((body.visits ?? 0) < me.visits) regressions++;
      me.visits = Math.max(me.visits, body.visits ?? 0);
      me.confirmedAt = performance.now();
    }
    return me;
  }

  const t0 = performance.now();
  const seconds = (): string => ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`soak: ${config.framework} on ${config.store}, ${config.concurrency} users for ${config.duration}s, storeTimeout ${config.storeTimeout}s`);
  const users = Array.from({ length: config.concurrency }, (_, i) => user(i));

  // Warm up, then measure memory from a settled heap.
  const warmUp = Math.min(5000, (config.duration * 1000) / 10);
  await sleep(warmUp);
  const before = await appStats(true);
  const startedAt = performance.now();
  const endAt = t0 + config.duration * 1000;
  // Whole fault cycles that fit between the warm-up and a quiet tail in which everything recovers.
  const quietTail = Math.min(8000, config.cycle * 400);
  const cycles = Math.floor((config.duration * 1000 - warmUp - quietTail) / (config.cycle * 1000));
  let pauses = 0;
  let restarts = 0;
  for (let cycle = 0; cycle < cycles; cycle++) {
    const cycleStart = performance.now();
    await sleep(2000);
    let fault: Fault = { kind: "pause", start: performance.now(), end: Infinity };
    faults.push(fault);
    await faultable.pause();
    console.log(`  ${seconds()}s pause`);
    await sleep(config.pause * 1000);
    await faultable.resume();
    fault.end = performance.now();
    pauses++;
    console.log(`  ${seconds()}s resume`);
    await sleep(Math.max(1000, (config.cycle * 1000) / 2 - (performance.now() - cycleStart)));
    fault = { kind: "restart", start: performance.now(), end: Infinity };
    faults.push(fault);
    await faultable.stop();
    console.log(`  ${seconds()}s stop`);
    await sleep(config.down * 1000);
    await faultable.start();
    fault.end = performance.now();
    restarts++;
    console.log(`  ${seconds()}s start`);
    await sleep(Math.max(0, config.cycle * 1000 - (performance.now() - cycleStart)));
  }
  await sleep(Math.max(0, endAt - performance.now()));
  stopping = true;
  const finals = await Promise.all(users);
  const loadSeconds = (performance.now() - startedAt) / 1000;

  // Every user's session, read once more after the last fault: still there, with what was confirmed.
  let finalLost = 0;
  let finalRegressions = 0;
  let finalFailures = 0;
  for (const me of finals) {
    if (me.cookie === undefined) continue;
    const answer = await send(agent, port, "GET", "/me", me.cookie, boundMs);
    if (answer === null || answer.status !== 200) {
      finalFailures++;
      continue;
    }
    const body = JSON.parse(answer.body) as { isNew: boolean; visits: number | null };
    if (body.isNew) finalLost++;
    else if ((body.visits ?? 0) < me.visits) finalRegressions++;
  }
  const drained = Date.now() + 10_000;
  let after = await appStats(true);
  while ((after.offline > 0 || after.pending > 2) && Date.now() < drained) {
    await sleep(200);
    after = await appStats(true);
  }
  const alive = !exitedEarly;
  child.kill();
  agent.destroy();
  await close();

  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0;
  const answered = [...byStatus.values()].reduce((a, b) => a + b, 0);
  const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  const expectedRestartLoss = config.store === "memcached";
  const report = {
    framework: config.framework,
    store: config.store,
    concurrency: config.concurrency,
    seconds: Number(loadSeconds.toFixed(1)),
    faults: { pauses, restarts, pauseSeconds: config.pause, downSeconds: config.down },
    answered,
    byStatus: Object.fromEntries([...byStatus].sort()),
    slowestMs: Math.round(slowest),
    p50Ms: Number(pct(50).toFixed(1)),
    p99Ms: Number(pct(99).toFixed(1)),
    noAnswer,
    missingRetryAfter,
    sessionsLost: { acrossPause: lost.pause, acrossRestart: lost.restart, withoutFault: lost.none, atFinalCheck: finalLost },
    confirmedWritesLost: regressions + finalRegressions,
    finalCheckFailures: finalFailures,
    memory: { rssBefore: mb(before.rss), rssAfter: mb(after.rss), heapBefore: mb(before.heapUsed), heapAfter: mb(after.heapUsed) },
    app: { unhandledRejections: after.unhandled, alive, clientQueues: { offline: after.offline, pending: after.pending }, log: after.logs },
  };
  console.log(JSON.stringify(report, null, 2));

  const failures: string[] = [];
  if (noAnswer > 0) failures.push(`${noAnswer} requests got no answer within ${boundMs} ms`);
  const unexpected = [...byStatus.keys()].filter((s) => s !== "200" && s !== "503");
  if (unexpected.length > 0) failures.push(`unexpected statuses: ${unexpected.join(", ")}`);
  if (missingRetryAfter > 0) failures.push(`${missingRetryAfter} 503 answers without Retry-After`);
  if (lost.pause + lost.none > 0) failures.push(`${lost.pause + lost.none} sessions lost across a pause or with no fault`);
  if (!expectedRestartLoss && lost.restart + finalLost > 0) failures.push(`${lost.restart + finalLost} sessions lost across a restart`);
  if (regressions + finalRegressions > 0) failures.push(`${regressions + finalRegressions} confirmed writes lost`);
  if (finalFailures > 0) failures.push(`${finalFailures} sessions could not be read after the last fault`);
  if (after.unhandled > 0) failures.push(`${after.unhandled} unhandled rejections in the app`);
  if (!alive) failures.push("the app process died");
  if (after.offline > 0 || after.pending > 2) failures.push(`store client queues did not drain: ${JSON.stringify({ offline: after.offline, pending: after.pending })}`);
  if ((byStatus.get("200") ?? 0) === 0) failures.push("no request succeeded");
  if (pauses === 0 || restarts === 0) failures.push("the run was too short for a pause and a restart");
  // A leak shows as heap that keeps what the load made: allow the warm-up's caches, not the traffic.
  if (after.heapUsed - before.heapUsed > 32 * 1024 * 1024) failures.push(`heap grew by ${mb(after.heapUsed - before.heapUsed)}`);
  if (failures.length > 0) {
    console.error(`soak FAILED:\n- ${failures.join("\n- ")}`);
    return 1;
  }
  console.log("soak passed: every request answered, no session lost, the app recovered by itself");
  return 0;
}

if (process.argv.includes("--serve")) {
  await serve();
} else {
  process.exitCode = await soak(parseArgs(process.argv.slice(2)));
}
