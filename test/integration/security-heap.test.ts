/**
 * No cookie value and no raw session id stays in the process after the requests that carried them
 * ended (issue #16 item 9: the verified-cookie cache used to keep the last 4,096 cookie values, and a
 * heap snapshot of an idle server held every recent user's replayable cookie).
 *
 * The Express example runs in its own process on a real Redis, with a probe that collects garbage and
 * writes a heap snapshot on request; the test, which alone knows the cookies, searches the file.
 * Requests go over connections that close after each answer, so no socket buffer holds a header.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startRedis, type RedisHandle } from "../services/index.js";
import { AppProcess, ensureBuilt } from "../helpers/app-process.js";

const USERS = 40;

/** One request on its own connection (`Connection: close`); returns status, body and the sid cookie set. */
function call(base: string, method: "GET" | "POST", path: string, cookie?: string, form?: string): Promise<{ status: number; body: string; sid?: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, base);
    const headers: Record<string, string> = { connection: "close" };
    if (cookie !== undefined) headers.cookie = cookie;
    if (form !== undefined) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      headers["content-length"] = String(Buffer.byteLength(form));
    }
    const req = request(url, { method, headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => {
        const line = (res.headers["set-cookie"] ?? []).find((c) => c.startsWith("sid="));
        resolve({ status: res.statusCode ?? 0, body, sid: line?.slice(4, line.indexOf(";")) });
      });
    });
    req.on("error", reject);
    req.end(form);
  });
}

function snapshot(app: AppProcess, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown): void => {
      const reply = message as { type?: string; path?: string };
      if (reply.type !== "snapshot" || typeof reply.path !== "string") return;
      app.child.off("message", onMessage);
      resolve(reply.path);
    };
    app.child.on("message", onMessage);
    void app.exited.then((code) => reject(new Error(`${app.name} exited (code ${String(code)}):\n${app.output}`)));
    if (!app.child.send({ type: "snapshot", path })) reject(new Error(`cannot reach the heap probe of ${app.name}`));
  });
}

describe("the heap after requests", () => {
  let redis: RedisHandle;
  let dir: string;
  beforeAll(async () => {
    await ensureBuilt();
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), "shared-session-heap-"));
  }, 300_000);
  afterAll(async () => {
    await redis?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test(`holds none of ${USERS} users' cookie values or session ids once their requests ended`, { timeout: 120_000 }, async () => {
    const app = await AppProcess.start("express", {
      env: { REDIS_URL: redis.url, MEMCACHED_SERVERS: undefined },
      nodeArgs: ["--expose-gc", "--import", "./test/integration/fixtures/heap-snapshot.mjs"],
      ipc: true,
    });
    const cookies: string[] = [];
    try {
      for (let i = 0; i < USERS; i++) {
        const login = await call(app.url, "POST", "/login", undefined, `user=heap-user-${i}`);
        expect(login.status).toBe(303);
        const value = login.sid!;
        cookies.push(value);
        // Requests that verify the cookie (and would have cached it), read and write the session.
        for (let k = 0; k < 3; k++) expect((await call(app.url, "GET", "/me", `sid=${value}`)).status).toBe(200);
        expect(JSON.parse((await call(app.url, "GET", "/me", `sid=${value}`)).body)).toMatchObject({ user: `heap-user-${i}` });
      }
      const file = await snapshot(app, join(dir, "app.heapsnapshot"));
      const heap = readFileSync(file, "latin1");
      expect(heap.length).toBeGreaterThan(1_000_000);
      // The search works: a string the library holds for good (in its source text) is found.
      expect(heap).toContain("session store unavailable");
      const found = cookies.flatMap((value) => {
        const id = value.slice(0, value.lastIndexOf("."));
        const mac = value.slice(value.lastIndexOf(".") + 1);
        return [id, mac].filter((needle) => heap.includes(needle));
      });
      expect(found, `${found.length} of ${USERS * 2} ids and signatures are still in the heap`).toEqual([]);
    } finally {
      await app.kill();
    }
  });
});
