/**
 * `npx tsx bench/lua-cost.ts`: what one write costs Redis, command by command, on a scratch server:
 * the peers' blind `SET`, an `EVALSHA` of a script that only returns 1 (with the same arguments:
 * the floor of any script), the versioned compare-and-set as it was (`GET` of the whole value into
 * Lua) and as it is (`GETRANGE` of the tag), and the whole-record compare-and-set. Every script call
 * succeeds (the stored tag is the expected one), as a write without contention does.
 *
 * For each record size: Redis CPU per call (`INFO cpu`, noisy on a busy machine) and the
 * `usec_per_call` of `INFO commandstats`; with `LUA_COST_CALLGRIND=1`, the server runs under
 * `valgrind --tool=callgrind` and each variant also gets its instructions per call (deterministic:
 * the figure to compare on a shared machine; includes about 3 % of idle server cron).
 *
 * Environment: LUA_COST_SIZES (record bytes, default 150,600,4000), LUA_COST_CALLS (per variant,
 * default 100000, 20000 under callgrind), LUA_COST_CALLGRIND=1, BENCH_PROVIDER=binaries|docker.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { COMPARE_AND_SET, COMPARE_VERSION_AND_SET, TAG_LENGTH } from "../adapters/redis/lua.js";
import { startRedis, type LauncherName } from "../test/services/index.js";

const callgrind = process.env.LUA_COST_CALLGRIND === "1";
const sizes = (process.env.LUA_COST_SIZES ?? "150,600,4000").split(",").map(Number);
const calls = Number(process.env.LUA_COST_CALLS ?? (callgrind ? 20_000 : 100_000));
const BATCH = 16;

/** The versioned compare-and-set before it read the tag with GETRANGE: kept here to compare. */
const GET_WHOLE_VALUE = `local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
if string.sub(current, 1, ${TAG_LENGTH}) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'XX', 'EX', ARGV[3])
  return 1
end
return current
`;

interface Variant {
  readonly name: string;
  /** The command, given the key, the expected tag, the expected record and the new value. */
  readonly args: (key: string, tag: string, record: string, value: string) => (string | number)[];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** A redis-server under callgrind, with instrumentation zeroed and dumped around each variant. */
async function startUnderCallgrind(): Promise<{ url: string; measure: (run: () => Promise<void>) => Promise<number>; close: () => void }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lua-cost-"));
  const port = await freePort();
  const child = spawn("valgrind", ["--tool=callgrind", `--callgrind-out-file=${dir}/cg.out`, "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const url = `redis://127.0.0.1:${port}`;
  for (let tries = 0; ; tries++) {
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, enableOfflineQueue: false });
    probe.on("error", () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch {
      probe.disconnect();
      if (tries > 120) throw new Error("lua-cost: redis-server under callgrind did not start");
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  const pid = String(child.pid);
  return {
    url,
    async measure(run) {
      execFileSync("callgrind_control", ["-z", pid], { stdio: "ignore" });
      await run();
      const before = new Set(readdirSync(dir));
      execFileSync("callgrind_control", ["-d", pid], { stdio: "ignore" });
      const dump = readdirSync(dir).find((name) => !before.has(name));
      if (dump === undefined) throw new Error("lua-cost: callgrind wrote no dump");
      const totals = /^(?:totals|summary): (\d+)/m.exec(readFileSync(path.join(dir, dump), "utf8"));
      return Number(totals?.[1] ?? NaN);
    },
    close() {
      child.kill("SIGTERM");
      setTimeout(() => rmSync(dir, { recursive: true, force: true }), 2_000).unref();
    },
  };
}

const server = callgrind ? await startUnderCallgrind() : undefined;
const handle = server === undefined ? await startRedis({ provider: (process.env.BENCH_PROVIDER ?? "binaries") as LauncherName }) : undefined;
const url = server?.url ?? handle!.url;
const redis = new Redis(url, { enableAutoPipelining: false });

const shaOf = async (source: string) => (await redis.script("LOAD", source)) as string;
const returnOne = await shaOf("return 1");
const before = await shaOf(GET_WHOLE_VALUE);
const versioned = await shaOf(COMPARE_VERSION_AND_SET.source);
const whole = await shaOf(COMPARE_AND_SET.source);
const variants: Variant[] = [
  { name: "SET key value EX ttl (the peers' write)", args: (key, _tag, _record, value) => ["SET", key, value, "EX", 3600] },
  { name: "EVALSHA of `return 1`, same arguments", args: (key, tag, _record, value) => ["EVALSHA", returnOne, 1, key, tag, value, 3600] },
  { name: "compare-and-set by tag, GET of the value (before)", args: (key, tag, _record, value) => ["EVALSHA", before, 1, key, tag, value, 3600] },
  { name: "compare-and-set by tag, GETRANGE of the tag (now)", args: (key, tag, _record, value) => ["EVALSHA", versioned, 1, key, tag, value, 3600] },
  { name: "compare-and-set of whole records", args: (key, _tag, record, value) => ["EVALSHA", whole, 1, key, record, value, 3600] },
];

async function cpuMicros(): Promise<number> {
  const info = await redis.info("cpu");
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return (field("used_cpu_user") + field("used_cpu_sys")) * 1e6;
}

async function commandStats(): Promise<string> {
  const info = await redis.info("commandstats");
  return [...info.matchAll(/^cmdstat_(\w+):calls=(\d+),usec=\d+,usec_per_call=([\d.]+)/gm)]
    .filter(([, name]) => name !== "info" && name !== "config")
    .map(([, name, count, usec]) => `${name} ${usec}${Number(count) === calls ? "" : ` (${count} calls)`}`)
    .join(", ");
}

const rows: string[] = ["| record | variant | Redis CPU µs/call | usec_per_call (commandstats) |" + (callgrind ? " instructions/call |" : ""), "|---:|---|---:|---|" + (callgrind ? "---:|" : "")];
for (const size of sizes) {
  const tag = `~${"A".repeat(TAG_LENGTH - 1)}`;
  const record = `{"v":1}\n${"x".repeat(Math.max(0, size - TAG_LENGTH - 8))}`;
  const value = tag + record; // written with the same tag, so every call finds the tag it expects
  const key = `lua-cost:${size}`;
  for (const variant of variants) {
    await redis.set(key, value, "EX", 3600);
    // The whole-record script compares records, stored tagged as the store does.
    const args = variant.args(key, tag, record, value);
    await redis.config("RESETSTAT");
    const run = async () => {
      for (let sent = 0; sent < calls; sent += BATCH) {
        const pipeline = redis.pipeline();
        for (let i = 0; i < BATCH; i++) pipeline.call(String(args[0]), ...args.slice(1));
        const replies = await pipeline.exec();
        const failed = replies?.find(([err, reply]) => err !== null || (args[0] === "EVALSHA" && reply !== 1));
        if (failed !== undefined) throw new Error(`lua-cost: ${variant.name} answered ${String(failed[0] ?? failed[1])}`);
      }
    };
    const cpu0 = await cpuMicros();
    const instructions = server === undefined ? undefined : await server.measure(run);
    if (server === undefined) await run();
    const cpu = (await cpuMicros()) - cpu0;
    const stats = await commandStats();
    const line = `| ${size} B | ${variant.name} | ${(cpu / calls).toFixed(2)} | ${stats} |` + (instructions === undefined ? "" : ` ${Math.round(instructions / calls).toLocaleString("en-US")} |`);
    rows.push(line);
    process.stderr.write(`${line}\n`);
  }
}
process.stdout.write(`${rows.join("\n")}\n`);
redis.disconnect();
server?.close();
await handle?.close();
