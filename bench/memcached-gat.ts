/**
 * MemcachedStore: get-and-touch (`getAndTouch: true`) against plain get + rewrite once per
 * `touchAfter` (`getAndTouch: false`), and what compare-and-set (`compareAndSet`, on by default)
 * costs a write, through the session manager's load + commit.
 *
 *   npx tsx bench/memcached-gat.ts            # starts its own memcached on a free port
 *   MEMCACHED_SERVERS=host:port npx tsx bench/memcached-gat.ts
 *
 * For each mode it reports requests per second and the commands the server counted per request
 * (`stats` deltas). Scenarios, all for an existing session:
 *   gat                 getAndTouch: true, data unchanged: the read resets the TTL;
 *   get                 getAndTouch: false, within touchAfter, data unchanged: a read only;
 *   get+rewrite         getAndTouch: false, touchAfter elapsed (touchAfter: 0): a read, then a
 *                       compare-and-set of the whole record (a CAS-replace with the token the read
 *                       returned) to push the TTL back;
 *   get+rewrite/plain   the same with compareAndSet: false: the rewrite is one plain `replace`;
 *   gat+change          getAndTouch: true, the request changes the data: GAT, then a CAS-replace;
 *   gat+change/plain    the same with compareAndSet: false: GAT, then one plain `replace`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import net from "node:net";
import { createSessionManager, type SessionStore } from "../src/index.js";
import { createMemcachedClient, MemcachedStore } from "../adapters/memcached.js";

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 2000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECRET = "bench-secret-that-is-at-least-32-characters";
const COUNTERS = ["cmd_get", "cmd_touch", "cmd_set", "cas_hits", "cas_badval", "delete_hits", "delete_misses", "bytes_read", "bytes_written"] as const;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

function stats(address: string): Promise<Record<string, number>> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), host!);
    let text = "";
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      if (text.endsWith("END\r\n")) {
        socket.end();
        const out: Record<string, number> = {};
        for (const line of text.split("\r\n")) {
          const [tag, name, value] = line.split(" ");
          if (tag === "STAT" && name !== undefined) out[name] = Number(value);
        }
        resolve(out);
      }
    });
    socket.on("error", reject);
    socket.write("stats\r\n");
  });
}

async function startMemcached(): Promise<{ address: string; child: ChildProcess }> {
  const port = await freePort();
  const args = ["-p", String(port), "-l", "127.0.0.1", "-U", "0", "-m", "256"];
  if (process.getuid?.() === 0) args.push("-u", "root");
  const child = spawn("memcached", args, { stdio: "ignore" });
  const address = `127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await stats(address).then(() => true, () => false)) return { address, child };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill();
  throw new Error("memcached did not start (is it installed? apt-get install memcached)");
}

async function run(store: SessionStore, touchAfter: number, change: boolean, address: string) {
  const manager = createSessionManager({ store, secret: SECRET, touchAfter });
  const cookies: string[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    const session = await manager.load(undefined, { secure: false });
    (session as unknown as Record<string, unknown>).userId = randomUUID();
    (session as unknown as Record<string, unknown>).cart = Array.from({ length: 10 }, (_, n) => ({ sku: n, qty: n + 1 }));
    const { setCookie } = await manager.commit(session);
    cookies.push(setCookie!.split(";")[0]!);
  }
  const before = await stats(address);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < REQUESTS) {
        const cookie = cookies[next++ % cookies.length]!;
        const session = await manager.load(cookie, { secure: false });
        if (session.isNew) throw new Error("session lost");
        if (change) (session as unknown as Record<string, unknown>).visits = next;
        await manager.commit(session);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const after = await stats(address);
  const perRequest = Object.fromEntries(COUNTERS.map((name) => [name, (after[name]! - before[name]!) / REQUESTS]));
  return { rps: REQUESTS / seconds, perRequest };
}

const given = process.env.MEMCACHED_SERVERS?.split(",")[0];
const server = given ? { address: given, child: undefined } : await startMemcached();
const client = createMemcachedClient([server.address]);
const scenarios = [
  { name: "gat", store: new MemcachedStore({ client, getAndTouch: true }), touchAfter: 60, change: false },
  { name: "get", store: new MemcachedStore({ client, getAndTouch: false }), touchAfter: 60, change: false },
  { name: "get+rewrite", store: new MemcachedStore({ client, getAndTouch: false }), touchAfter: 0, change: false },
  { name: "get+rewrite/plain", store: new MemcachedStore({ client, getAndTouch: false, compareAndSet: false }), touchAfter: 0, change: false },
  { name: "gat+change", store: new MemcachedStore({ client, getAndTouch: true }), touchAfter: 60, change: true },
  { name: "gat+change/plain", store: new MemcachedStore({ client, getAndTouch: true, compareAndSet: false }), touchAfter: 60, change: true },
];
const results = new Map<string, { rps: number[]; perRequest: Record<string, number> }>();
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const scenario of scenarios) {
      const { rps, perRequest } = await run(scenario.store, scenario.touchAfter, scenario.change, server.address);
      const entry = results.get(scenario.name) ?? { rps: [], perRequest };
      entry.rps.push(rps);
      results.set(scenario.name, entry);
    }
  }
} finally {
  client.close();
  server.child?.kill();
}
console.log(`${REQUESTS} requests over ${SESSIONS} sessions, ${CONCURRENCY} in flight, median of ${ROUNDS} rounds, memcached ${server.address}`);
for (const [name, { rps, perRequest }] of results) {
  const median = [...rps].sort((a, b) => a - b)[Math.floor(rps.length / 2)]!;
  const ops = Object.entries(perRequest)
    .filter(([, v]) => v !== 0)
    .map(([k, v]) => `${k}=${Number(v.toFixed(2))}`)
    .join(" ");
  console.log(`${name.padEnd(18)} ${Math.round(median).toString().padStart(6)} req/s   per request: ${ops}`);
}
