import { readFileSync, readdirSync } from "node:fs";
import net from "node:net";
import type { ServerAddress } from "./types.js";

export type ProbeProtocol = "redis" | "memcached";

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One request/response round trip on a fresh connection: `PING` for Redis and Sentinel,
 * `version` for Memcached. Resolves whether the server answered as expected within `timeoutMs`.
 */
export function probe(address: ServerAddress, protocol: ProbeProtocol, timeoutMs = 1000): Promise<boolean> {
  const request = protocol === "redis" ? "PING\r\n" : "version\r\n";
  const expected = protocol === "redis" ? "+PONG" : "VERSION ";
  return new Promise((resolve) => {
    let received = "";
    const socket = net.connect({ host: address.host, port: address.port });
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.setEncoding("utf8");
    socket.once("connect", () => socket.write(request));
    socket.on("data", (chunk: string) => {
      received += chunk;
      if (received.includes("\r\n")) finish(received.startsWith(expected));
    });
    socket.once("error", () => finish(false));
    socket.once("close", () => finish(false));
  });
}

/**
 * Polls until the server answers. `exited` lets the caller fail fast when the process or
 * container died (a taken port, a bad argument) instead of waiting for the timeout.
 */
export async function waitUntilReady(
  address: ServerAddress,
  protocol: ProbeProtocol,
  options: { timeoutMs: number; exited: () => Promise<boolean> | boolean; describe: () => Promise<string> | string },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (let attempt = 0; ; attempt++) {
    if (await probe(address, protocol)) return;
    // Checking a container's state is a Docker API call: not on every attempt.
    if (attempt % 5 === 4 && (await options.exited())) {
      throw new Error(`exited before answering on ${address.host}:${address.port}\n${await options.describe()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `did not answer on ${address.host}:${address.port} within ${options.timeoutMs} ms\n${await options.describe()}`,
      );
    }
    await sleep(50);
  }
}

/** Polls `condition` until it holds; throws `message` with the last error after `timeoutMs`. */
export async function waitFor(
  condition: () => Promise<boolean> | boolean,
  message: string,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await condition()) return;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`test-services: ${message} (waited ${timeoutMs} ms)`, { cause: lastError });
    }
    await sleep(intervalMs);
  }
}

/**
 * The scheduler state of every thread of `pid` (`R`, `S`, `T` …), or `undefined` where there is
 * no Linux /proc.
 */
export function threadStates(pid: number): string[] | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  const states: string[] = [];
  for (const task of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, "utf8");
      // The command name is in parentheses and may itself contain ") ": the state follows the last one.
      states.push(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return states;
}

/**
 * SIGSTOP reaches a multi-threaded server lazily: the thread that takes the signal stops the
 * others only when it next runs, and they keep answering meanwhile. A pause is therefore only
 * done once every thread shows `T`.
 */
export async function waitUntilAllThreadsStopped(pid: number): Promise<void> {
  if (threadStates(pid) === undefined) {
    await sleep(200); // no /proc (macOS): give the signal a moment to land.
    return;
  }
  await waitFor(
    () => {
      const states = threadStates(pid) ?? [];
      return states.length > 0 && states.every((state) => state === "T");
    },
    `process ${pid} did not stop after SIGSTOP`,
    5_000,
    5,
  );
}

/** The start time of `pid` in clock ticks since boot, to recognise it despite pid reuse. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}
