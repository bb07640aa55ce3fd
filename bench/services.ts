/**
 * The benchmark's own Redis and Memcached (through the test-services module, binaries by default:
 * no container layer between the app and the server), and the server-side counters it reads.
 */
import net from "node:net";
import { Redis } from "ioredis";
import { startMemcached, startRedis, type LauncherName, type MemcachedHandle, type RedisHandle } from "../test/services/index.js";

export interface BenchServers {
  readonly redisUrl: string;
  readonly memcached: string;
  /** Counters of both servers, for deltas around a measurement. */
  counters(): Promise<Counters>;
  /** Server versions, for the report. */
  versions(): Promise<{ redis: string; memcached: string }>;
  close(): Promise<void>;
}

/** Server-side counters at one moment. */
export interface Counters {
  /** `INFO commandstats`: calls per command name (lower case, subcommands as `config|get`). */
  readonly redis: Record<string, number>;
  /** memcached `stats`: the command counters. */
  readonly memcached: Record<string, number>;
  /** CPU time each server used so far (user + system), microseconds. */
  readonly redisCpu: number;
  readonly memcachedCpu: number;
}

/**
 * Starts one Redis and one Memcached on loopback. `BENCH_PROVIDER` (`binaries` by default, or
 * `docker`) picks who starts them; `REDIS_URL` / `MEMCACHED_SERVERS` use servers you run instead.
 */
export async function startServers(): Promise<BenchServers> {
  const provider = (process.env.BENCH_PROVIDER ?? "binaries") as LauncherName;
  let redis: RedisHandle | undefined;
  let memcached: MemcachedHandle | undefined;
  const redisUrl = process.env.REDIS_URL ?? (redis = await startRedis({ provider })).url;
  const memcachedAddress = process.env.MEMCACHED_SERVERS?.split(",")[0] ?? (memcached = await startMemcached(1, { provider })).servers[0]!.address;
  const statsClient = new Redis(redisUrl, { enableAutoPipelining: false, lazyConnect: true });
  statsClient.on("error", () => undefined);
  await statsClient.connect();
  return {
    redisUrl,
    memcached: memcachedAddress,
    async counters() {
      const [info, cpu, mc] = await Promise.all([statsClient.info("commandstats"), statsClient.info("cpu"), memcachedStats(memcachedAddress)]);
      const seconds = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(cpu)?.[1] ?? 0);
      return {
        redis: parseCommandStats(info),
        memcached: mc,
        redisCpu: Math.round((seconds("used_cpu_user") + seconds("used_cpu_sys")) * 1e6),
        memcachedCpu: Math.round(((mc.rusage_user ?? 0) + (mc.rusage_system ?? 0)) * 1e6),
      };
    },
    async versions() {
      const info = await statsClient.info("server");
      const redis = /redis_version:(\S+)/.exec(info)?.[1] ?? "?";
      const memcached = (await memcachedCommand(memcachedAddress, "version", (text) => text.endsWith("\r\n"))).replace(/^VERSION\s+/, "").trim();
      return { redis, memcached };
    },
    async close() {
      statsClient.disconnect();
      await Promise.all([redis?.close(), memcached?.close()]);
    },
  };
}

/** `cmdstat_getex:calls=12,usec=…` lines → `{ getex: 12 }`. */
export function parseCommandStats(info: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of info.split("\r\n")) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (match) out[match[1]!] = Number(match[2]);
  }
  return out;
}

/** One text-protocol command over a plain socket; resolves with the answer once `complete` says so. */
function memcachedCommand(address: string, command: string, complete: (text: string) => boolean): Promise<string> {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon);
  const port = Number(address.slice(colon + 1));
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    let text = "";
    socket.setTimeout(5000, () => socket.destroy(new Error(`memcached ${command}: no answer from ${address}`)));
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      if (!complete(text)) return;
      socket.end();
      resolve(text);
    });
    socket.on("error", reject);
    socket.write(`${command}\r\n`);
  });
}

/** memcached `stats`: the numeric `STAT name value` lines. */
export async function memcachedStats(address: string): Promise<Record<string, number>> {
  const text = await memcachedCommand(address, "stats", (t) => t.endsWith("END\r\n"));
  const out: Record<string, number> = {};
  for (const line of text.split("\r\n")) {
    const [tag, name, value] = line.split(" ");
    // Counters are integers; rusage_user / rusage_system are seconds with a fraction.
    if (tag === "STAT" && name !== undefined && value !== undefined && /^\d+(\.\d+)?$/.test(value)) out[name] = Number(value);
  }
  return out;
}

/** Commands per request one measurement cost on the servers. */
export interface CommandCount {
  /** Commands the app sent to Redis per request (a script counts once, as the client sent it). */
  readonly redis: number;
  /** Commands the app sent to Memcached per request (get-and-touch counts once). */
  readonly memcached: number;
  /** Per command name, per request (Redis names as `INFO` prints them; `(script)` for commands a script ran). */
  readonly breakdown: Record<string, number>;
}

/**
 * Deltas of the counters divided by `requests`. Commands a Lua script runs are counted by Redis under
 * their own names; the only script in play is our compare-and-set (one `GETRANGE` of the version
 * tag, or a `GET` for the whole-record compare or on a conflict, plus one `SET` when it writes), so
 * those calls are moved out of the top-level count, up to the number of script runs.
 * The `INFO` calls of this reader are left out.
 */
export function commandsPerRequest(before: Counters, after: Counters, requests: number): CommandCount {
  const breakdown: Record<string, number> = {};
  const delta: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after.redis)) {
    const d = calls - (before.redis[name] ?? 0);
    if (d > 0 && name !== "info") delta[name] = d;
  }
  const scriptRuns = (delta.evalsha ?? 0) + (delta.eval ?? 0);
  for (const inner of ["getrange", "get", "set"]) {
    const moved = Math.min(delta[inner] ?? 0, scriptRuns);
    if (moved > 0) {
      delta[inner]! -= moved;
      breakdown[`${inner} (script)`] = moved / requests;
    }
  }
  let redis = 0;
  for (const [name, d] of Object.entries(delta)) {
    if (d <= 0) continue;
    redis += d;
    breakdown[name] = d / requests;
  }
  const mc = (name: string) => (after.memcached[name] ?? 0) - (before.memcached[name] ?? 0);
  // memcached counts a get-and-touch under cmd_touch only (and touch_hits/touch_misses): one command.
  const memcachedCommands = mc("cmd_get") + mc("cmd_set") + mc("cmd_touch") + mc("delete_hits") + mc("delete_misses");
  for (const name of ["cmd_get", "cmd_set", "cmd_touch", "delete_hits", "delete_misses"]) {
    const d = mc(name);
    if (d > 0) breakdown[`mc:${name.replace("cmd_", "")}`] = d / requests;
  }
  return { redis: redis / requests, memcached: memcachedCommands / requests, breakdown };
}
