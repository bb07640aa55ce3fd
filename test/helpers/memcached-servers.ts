/**
 * Support of the Memcached tests: reads servers directly over the text protocol, never through the
 * store or memjs (what a server holds, `mg <key> t`, and what it counted, `stats`), and a fixture of
 * dedicated servers for a describe block.
 */
import net from "node:net";
import type memjs from "memjs";
import { afterAll, beforeAll } from "vitest";
import { createMemcachedClient } from "../../adapters/memcached.js";
import { startMemcached, type MemcachedHandle } from "../services/index.js";

/** `host:port` of one server. */
export type Address = string;

/** Send `command` on a fresh connection and resolve with the reply once `done(reply)` says it is complete. */
function ask(address: Address, command: string, done: (reply: string) => boolean): Promise<string> {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon);
  const port = Number(address.slice(colon + 1));
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    let reply = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`memcached ${address} did not answer ${JSON.stringify(command.trim())}`));
    }, 5000);
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (done(reply)) {
        clearTimeout(timer);
        socket.end();
        resolve(reply);
      }
    });
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.write(command);
  });
}

/**
 * Remaining TTL in seconds the server holds for `key` (meta command `mg <key> t`, memcached >= 1.6),
 * `-1` for an item that never expires, or `null` when the server does not hold the key.
 */
export async function serverTtl(address: Address, key: string): Promise<number | null> {
  const reply = await ask(address, `mg ${key} t\r\n`, (r) => r.endsWith("\r\n"));
  if (reply.startsWith("EN")) return null;
  const match = /^HD t(-?\d+)\r\n$/.exec(reply);
  if (!match) throw new Error(`unexpected reply to mg from ${address}: ${JSON.stringify(reply)}`);
  return Number(match[1]);
}

/**
 * TTL of `key` on whichever of `addresses` holds it, or `null` when none does. Throws when more than
 * one server holds the key (a store must keep each session in exactly one place).
 */
export async function ttlOnServers(addresses: readonly Address[], key: string): Promise<number | null> {
  const ttls = await Promise.all(addresses.map((address) => serverTtl(address, key)));
  const holders = ttls.filter((ttl) => ttl !== null);
  if (holders.length > 1) throw new Error(`${key} is held by ${holders.length} servers`);
  return holders[0] ?? null;
}

/** Which of `addresses` hold `key` (indexes). */
export async function holdersOf(addresses: readonly Address[], key: string): Promise<number[]> {
  const ttls = await Promise.all(addresses.map((address) => serverTtl(address, key)));
  return ttls.flatMap((ttl, i) => (ttl === null ? [] : [i]));
}

/** The server's `stats` counters. */
export async function stats(address: Address): Promise<Record<string, number>> {
  const reply = await ask(address, "stats\r\n", (r) => r.endsWith("END\r\n"));
  const out: Record<string, number> = {};
  for (const line of reply.split("\r\n")) {
    const [tag, name, value] = line.split(" ");
    if (tag === "STAT" && name !== undefined) out[name] = Number(value);
  }
  return out;
}

/** Counters that move when a client sends a command. */
export const COMMAND_COUNTERS = [
  "cmd_get",
  "get_hits",
  "get_misses",
  "cmd_touch",
  "touch_hits",
  "touch_misses",
  "cmd_set",
  "delete_hits",
  "delete_misses",
  "incr_misses",
  "incr_hits",
  "decr_misses",
  "decr_hits",
  "cas_misses",
  "cas_hits",
  "cas_badval",
  "cmd_flush",
] as const;

export type CommandCounts = Record<(typeof COMMAND_COUNTERS)[number], number>;

/** Command counters summed over `addresses`. */
export async function commandCounts(addresses: readonly Address[]): Promise<CommandCounts> {
  const all = await Promise.all(addresses.map(stats));
  const sum = Object.fromEntries(COMMAND_COUNTERS.map((name) => [name, 0])) as CommandCounts;
  for (const one of all) for (const name of COMMAND_COUNTERS) sum[name] += one[name] ?? 0;
  return sum;
}

/** `after - before`, keeping only the counters that moved. */
export function delta(before: CommandCounts, after: CommandCounts): Partial<CommandCounts> {
  const out: Partial<CommandCounts> = {};
  for (const name of COMMAND_COUNTERS) if (after[name] !== before[name]) out[name] = after[name] - before[name];
  return out;
}

/** Count the commands `run` makes the servers execute. Only sound on servers no one else uses. */
export async function countCommands(addresses: readonly Address[], run: () => Promise<unknown>): Promise<Partial<CommandCounts>> {
  const before = await commandCounts(addresses);
  await run();
  return delta(before, await commandCounts(addresses));
}

/** Dedicated servers of one describe block, with a client on them (createMemcachedClient's defaults). */
export interface DedicatedMemcached {
  readonly handle: MemcachedHandle;
  readonly addresses: Address[];
  readonly client: memjs.Client;
}

/**
 * Start `count` dedicated memcached servers before the block's tests and a client on them, hand
 * them to `use`, and close both after the block. Counting tests need servers nothing else touches.
 */
export function dedicatedMemcached(count: number, use: (servers: DedicatedMemcached) => void): void {
  let servers: DedicatedMemcached | undefined;
  beforeAll(async () => {
    const handle = await startMemcached(count);
    const addresses = handle.servers.map((server) => server.address);
    servers = { handle, addresses, client: createMemcachedClient(addresses) };
    use(servers);
  });
  afterAll(async () => {
    servers?.client.close();
    await servers?.handle.close();
  });
}

/** Every key `address` holds (`lru_crawler metadump all`, memcached >= 1.4.31), as the server lists them. */
export async function keysOn(address: Address): Promise<string[]> {
  const reply = await ask(address, "lru_crawler metadump all\r\n", (r) => r.endsWith("END\r\n"));
  return reply
    .split(/\r?\n/)
    .filter((line) => line.startsWith("key="))
    .map((line) => decodeURIComponent(line.slice(4, line.indexOf(" "))));
}
