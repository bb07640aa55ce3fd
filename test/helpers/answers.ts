/**
 * Support for the "every way an app answers" tests: a watch on the process for errors nobody
 * handled, a RedisStore under a prefix of its own on the shared Redis (with the records it holds
 * counted on the server), and a raw HTTP client that reports what the client really received,
 * including a connection cut after (or before) the response.
 */
import http from "node:http";
import { Redis } from "ioredis";
import { RedisStore } from "../../adapters/redis.js";
import { InstrumentedStore } from "./instrumented-store.js";
import { services, uniquePrefix } from "../services/index.js";

/** Errors that reached the process with nobody to handle them, while the watch was on. */
export interface ProcessWatch {
  readonly errors: unknown[];
  stop(): void;
}

/**
 * Listen for `unhandledRejection` and `uncaughtException` (an `error` event without a listener
 * ends up there) until `stop()`. Vitest's own listeners still run, so such an error also fails the
 * run; the watch lets a test name the request that caused it.
 */
export function watchProcess(): ProcessWatch {
  const errors: unknown[] = [];
  const onError = (err: unknown): void => {
    errors.push(err);
  };
  process.on("unhandledRejection", onError);
  process.on("uncaughtException", onError);
  return {
    errors,
    stop() {
      process.off("unhandledRejection", onError);
      process.off("uncaughtException", onError);
    },
  };
}

export interface RedisArea {
  readonly prefix: string;
  /** A store over this area, as another process would open it (its own client), instrumented for faults and delays. */
  openStore(): InstrumentedStore;
  /** How many session records the area holds on the server. */
  records(): Promise<number>;
  /** The data of every record in the area, as the record's JSON text holds it. */
  recordTexts(): Promise<string[]>;
  close(): Promise<void>;
}

/** A fresh key prefix on the shared Redis, with a counter of what the server holds under it. */
export async function redisArea(label: string): Promise<RedisArea> {
  const url = services().redis.url;
  const prefix = uniquePrefix(label);
  const admin = new Redis(url, { lazyConnect: true });
  admin.on("error", () => undefined);
  await admin.connect();
  const clients: Redis[] = [admin];
  const keys = async (): Promise<string[]> => {
    const found: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = await admin.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== "0");
    return found.filter((key) => !key.slice(prefix.length).includes(":"));
  };
  return {
    prefix,
    openStore() {
      const client = new Redis(url, { enableOfflineQueue: true, maxRetriesPerRequest: 1, commandTimeout: 3000 });
      client.on("error", () => undefined);
      clients.push(client);
      return new InstrumentedStore(new RedisStore({ client, prefix }));
    },
    async records() {
      return (await keys()).length;
    },
    async recordTexts() {
      const found = await keys();
      return found.length === 0 ? [] : ((await admin.mget(...found)).filter((v) => v !== null) as string[]);
    },
    async close() {
      for (const client of clients) client.disconnect();
    },
  };
}

/** What a client received: the head and body as far as they came, and how the connection ended. */
export interface Received {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The response arrived in full. */
  complete: boolean;
  /** No response head at all (the connection was cut, or nothing answered within the wait). */
  noResponse: boolean;
}

/**
 * One request on its own connection. `abortAfterHead` closes the connection once the head is
 * there. Resolves when the response ends or the connection closes, or after `waitMs` with what
 * came so far (a hang is then `complete: false`).
 */
export function send(
  url: string,
  init: { method?: string; cookie?: string; headers?: Record<string, string>; abortAfterHead?: boolean; waitMs?: number; onHead?: (headers: http.IncomingHttpHeaders) => void } = {},
): Promise<Received> {
  return new Promise((resolve) => {
    const received: Received = { status: 0, headers: {}, body: "", complete: false, noResponse: true };
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolve(received);
    };
    const timer = setTimeout(() => {
      req.destroy();
      finish();
    }, init.waitMs ?? 5000);
    const headers: Record<string, string> = { ...init.headers };
    if (init.cookie !== undefined) headers.cookie = init.cookie;
    const req = http.request(url, { method: init.method ?? "GET", headers, agent: false }, (res) => {
      received.noResponse = false;
      received.status = res.statusCode ?? 0;
      received.headers = res.headers;
      init.onHead?.(res.headers);
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        received.complete = res.complete;
        received.body = Buffer.concat(chunks).toString();
        finish();
      });
      res.on("error", () => undefined);
      res.on("close", () => {
        received.body = Buffer.concat(chunks).toString();
        finish();
      });
      if (init.abortAfterHead === true) {
        req.destroy();
      }
    });
    req.on("error", () => finish());
    req.on("close", () => setTimeout(finish, 20));
    req.end();
  });
}

/** The `name=value` of the cookie called `name` among a response's Set-Cookie headers, or undefined. */
export function cookieOf(headers: http.IncomingHttpHeaders, name = "sid"): string | undefined {
  for (const header of headers["set-cookie"] ?? []) {
    const pair = header.split(";")[0]!;
    if (pair.slice(0, pair.indexOf("=")).trim() === name && pair.slice(pair.indexOf("=") + 1) !== "") return pair.trim();
  }
  return undefined;
}

/** A pause on the event loop long enough for work the request left behind to reach the store. */
export function pause(ms = 30): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
