/**
 * `npm run demo`: three apps (Express, Koa, Fastify), three processes, one Redis, and one user
 * walking between them with a cookie, as a browser would. Proves that no process holds a session:
 * the user logs in on one, counts on another, reads on the third, survives a process killed and
 * restarted, and logs out everywhere at once. Prints one line per step; exits 0 only if all held.
 *
 * Redis comes from REDIS_URL, else Docker (testcontainers), else `redis-server` on PATH: the same
 * providers as the integration tests. Everything the demo starts is stopped when it ends, however.
 *
 * Run after `npm ci`: `npm run demo` (builds the package first; the examples import the build).
 */
import { Redis } from "ioredis";
import { AppProcess, Browser, type WhoAmI } from "../test/helpers/app-process.js";
import { INSTALL_HINT, chooseLauncher, launcherFor } from "../test/services/resolve.js";
import { startRedisOn } from "../test/services/topology.js";
import type { RedisHandle } from "../test/services/types.js";

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: number, text: string): string => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
const ok = paint(32, "✓");
const bad = paint(31, "✗");
const dim = (text: string): string => paint(2, text);

class StepFailed extends Error {}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new StepFailed(message);
}

const same = (a: WhoAmI, b: WhoAmI): boolean => a.user === b.user && a.count === b.count;
const show = (who: WhoAmI): string => (who.user === null ? "not signed in" : `${who.user}, count ${who.count}`);

let steps = 0;
/** Runs one step and prints its line; a failed step ends the demo. */
async function step(where: string, what: () => Promise<string>): Promise<void> {
  steps += 1;
  const label = `${String(steps).padStart(2)} ${where.padEnd(8)}`;
  try {
    console.log(`${ok} ${label} ${await what()}`);
  } catch (err) {
    console.log(`${bad} ${label} ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  }
}

/** A Redis for the demo, and how it was obtained; undefined (after printing why) when there is none. */
async function obtainRedis(): Promise<{ url: string; how: string; handle?: RedisHandle } | undefined> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, how: "REDIS_URL" };
  const choice = await chooseLauncher();
  if ("problem" in choice) {
    console.error(
      `${bad} The demo needs a Redis server and found none.\n` +
        `  Set REDIS_URL=redis://host:port to use a running one, or install Docker (the demo then starts the redis image),\n` +
        `  or install Redis so that redis-server is on PATH (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis).\n` +
        dim(`  (what was tried: ${choice.problem.replace(` ${INSTALL_HINT}`, "")})`),
    );
    return undefined;
  }
  const handle = await startRedisOn(launcherFor(choice.launcher));
  const how = choice.launcher === "docker" ? "a Docker container started for the demo" : "redis-server on PATH, started for the demo";
  return { url: handle.url, how, handle };
}

async function main(): Promise<number> {
  console.log("shared-session demo: Express, Koa and Fastify in three processes on one Redis; no session lives in any process.\n");
  const redis = await obtainRedis();
  if (redis === undefined) return 1;
  console.log(`  Redis: ${redis.url} (${redis.how})`);

  const apps: AppProcess[] = [];
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on("error", () => undefined);
  const cleanUp = async (): Promise<void> => {
    client.disconnect();
    await Promise.allSettled(apps.map((app) => app.kill("SIGTERM")));
    await redis.handle?.close();
  };
  const interrupted = (): void => {
    console.log("\ninterrupted: stopping everything the demo started");
    void cleanUp().finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);

  try {
    await client.connect();
    await client.ping();
    const env = { REDIS_URL: redis.url, MEMCACHED_SERVERS: undefined, SESSION_COOKIE_NAME: undefined };
    for (const name of ["express", "koa", "fastify"]) apps.push(await AppProcess.start(name, { env }));
    const [express, koa, fastify] = apps as [AppProcess, AppProcess, AppProcess];
    for (const app of apps) console.log(`  ${app.name.padEnd(8)} ${app.url}  (pid ${app.pid})`);
    console.log("");

    const browser = new Browser();
    const inRedis = async (id: string): Promise<boolean> => (await client.exists(`sess:${id}`)) === 1;
    const expectOn = async (app: AppProcess, expected: WhoAmI): Promise<string> => {
      const who = await browser.whoami(app.url);
      check(same(who, expected), `GET /me answered ${show(who)}, expected ${show(expected)}`);
      return `GET /me → ${show(who)}`;
    };
    let id = "";
    let oldCookie = "";

    await step("express", async () => {
      const reply = await browser.get(express.url, "/");
      check(reply.status === 200 && reply.text.includes("Not signed in"), `GET / answered ${reply.status}`);
      check(reply.setCookies.length === 0, "a visitor was sent a cookie");
      return "GET / → not signed in; no cookie sent, nothing stored for a visitor";
    });

    await step("express", async () => {
      const reply = await browser.post(express.url, "/login", { user: "ada" });
      check(reply.status === 303, `POST /login answered ${reply.status}: ${reply.text}`);
      check(browser.sessionId !== undefined, "no session cookie was set");
      id = browser.sessionId;
      oldCookie = browser.cookies.get("sid")!;
      check(await inRedis(id), `sess:${id} is not in Redis`);
      return `POST /login user=ada → 303, cookie sid=${id.slice(0, 8)}…, record sess:${id.slice(0, 8)}… in Redis`;
    });

    await step("koa", async () => {
      const reply = await browser.post(koa.url, "/count");
      check(reply.status === 303, `POST /count answered ${reply.status}: ${reply.text}`);
      return `POST /count → 303 (the session Express created, counted by Koa) ${dim("and " + (await expectOn(koa, { user: "ada", count: 1 })))}`;
    });

    await step("fastify", async () => `${await expectOn(fastify, { user: "ada", count: 1 })} (written by Koa, read by Fastify)`);

    const oldPid = express.pid;
    await step("express", async () => {
      const code = await express.kill("SIGKILL");
      check(code === null, `the process exited with code ${String(code)} instead of being killed`);
      return `kill -9 ${oldPid}: the Express process is gone, mid-session`;
    });

    await step("koa", async () => {
      const reply = await browser.post(koa.url, "/count");
      check(reply.status === 303, `POST /count answered ${reply.status}`);
      return `POST /count → 303 while Express is down ${dim("and " + (await expectOn(koa, { user: "ada", count: 2 })))}`;
    });

    await step("express", async () => {
      await express.restart();
      check(express.pid !== oldPid, "the process was not replaced");
      return `restarted: a new process (pid ${express.pid}) on ${express.url}`;
    });

    await step("express", async () => `${await expectOn(express, { user: "ada", count: 2 })} (a process that never saw this session serves it)`);

    await step("fastify", async () => {
      const reply = await browser.post(fastify.url, "/count");
      check(reply.status === 303, `POST /count answered ${reply.status}`);
      return `POST /count → 303 ${dim("and " + (await expectOn(fastify, { user: "ada", count: 3 })))}`;
    });

    await step("all", async () => {
      for (const app of apps) await expectOn(app, { user: "ada", count: 3 });
      return "GET /me on express, koa and fastify → ada, count 3 on all three";
    });

    await step("koa", async () => {
      const reply = await browser.post(koa.url, "/logout");
      check(reply.status === 303, `POST /logout answered ${reply.status}`);
      check(browser.cookies.size === 0, "the cookie was not cleared");
      check(!(await inRedis(id)), `sess:${id} is still in Redis`);
      return "POST /logout → 303, cookie cleared, record deleted from Redis";
    });

    for (const app of apps) {
      await step(app.name, async () => {
        const replay = new Browser();
        replay.cookies.set("sid", oldCookie);
        const who = await replay.whoami(app.url);
        check(who.user === null, `the logged-out cookie still reads ${show(who)}`);
        const count = await replay.post(app.url, "/count");
        check(count.status === 401, `POST /count with the old cookie answered ${count.status}`);
        return "the old cookie, replayed → not signed in, POST /count → 401";
      });
    }

    console.log(`\n${ok} All ${steps} steps held: every session lived in Redis, and any process served any request.`);
    return 0;
  } catch (err) {
    if (!(err instanceof StepFailed)) console.log(`${bad} ${err instanceof Error ? err.message : String(err)}`);
    console.log(`\n${bad} The demo stopped ${steps === 0 ? "before its first step" : `at step ${steps}`}.`);
    for (const app of apps) if (app.output.trim()) console.log(dim(`--- ${app.name} output ---\n${app.output.trim()}`));
    return 1;
  } finally {
    await cleanUp();
  }
}

process.exitCode = await main();
