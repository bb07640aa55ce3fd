/**
 * Edge cases of the Express binding's response hold: every way a response can start (writeHead,
 * write, end, flushHeaders, pipe, HEAD, redirect) waits for the session write, and every way a
 * commit can fail ends in a clean answer. Runs on Express 5, or on the Express that
 * `SHARED_SESSION_EXPRESS_MODULE` names (such as 4.x installed in a temporary folder).
 */
import { createServer } from "node:http";
import { Readable } from "node:stream";
import type { ErrorRequestHandler, Express, Request, RequestHandler, Response } from "express";
import { afterEach, describe, expect, it } from "vitest";
import { expressSession } from "../../src/frameworks/express/index.js";
import { StoreUnavailableError, type SessionOptions } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";
import { expressModule, listen, type RunningApp } from "../helpers/framework-apps.js";
import { cookieHeader, parseSetCookie, request, sessionCookie } from "../helpers/http.js";
import { InstrumentedStore } from "../helpers/instrumented-store.js";
import { observedRequest, settle } from "../helpers/observed-request.js";

const SECRET = "express-unit-test-secret-of-32-chars!";
const running: RunningApp[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((app) => app.close()));
});

async function setup(routes: (app: Express) => void, options: Partial<SessionOptions> = {}) {
  const store = new InstrumentedStore(new MemoryStore({ quiet: true }));
  const app = expressModule();
  app.use(expressSession({ store, secret: SECRET, ...options }));
  app.get("/me", (req, res) => {
    res.json({ visits: req.session.visits ?? null });
  });
  routes(app);
  const server = await listen(createServer(app));
  running.push(server);
  return { store, url: server.url };
}

/** The `sid` cookie among raw Set-Cookie headers. */
function sid(setCookie: string[] | undefined): string {
  const found = (setCookie ?? []).map(parseSetCookie).filter((c) => c.name === "sid");
  expect(found).toHaveLength(1);
  return cookieHeader(found[0]!);
}

/**
 * Send a request while the store holds its writes; check that no response head reaches the client
 * before the write is let through, then return the whole response.
 */
async function heldUntilWritten(store: InstrumentedStore, url: string, init: { method?: string } = {}) {
  const gate = store.holdWrites();
  const pending = observedRequest(url, init);
  await gate.arrived;
  await settle();
  expect(pending.headArrived).toBe(false);
  gate.open();
  return pending.done;
}

describe("the response head waits for the session write", () => {
  const starts: Record<string, (app: Express) => void> = {
    "res.json": (app) =>
      app.post("/go", (req, res) => {
        req.session.visits = 1;
        res.json({ ok: true });
      }),
    "res.redirect": (app) =>
      app.post("/go", (req, res) => {
        req.session.visits = 1;
        res.redirect(303, "/me");
      }),
    "res.writeHead then res.end": (app) =>
      app.post("/go", (req, res) => {
        req.session.visits = 1;
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("ok");
      }),
    "res.write streaming": (app) =>
      app.post("/go", (req, res) => {
        req.session.visits = 1;
        res.write("a");
        res.write("b");
        setTimeout(() => res.end("c"), 10);
      }),
    "res.flushHeaders": (app) =>
      app.post("/go", (req, res) => {
        req.session.visits = 1;
        res.flushHeaders();
        setTimeout(() => res.end("late body"), 10);
      }),
  };

  for (const [label, route] of Object.entries(starts)) {
    it(`${label}: no head reaches the client while the write is pending`, async () => {
      const { store, url } = await setup(route);
      const response = await heldUntilWritten(store, `${url}/go`, { method: "POST" });
      expect(response.status).toBeLessThan(400);
      const cookie = sid(response.headers["set-cookie"]);
      expect((await request(url, "/me", { cookie })).json()).toEqual({ visits: 1 });
    });
  }

  it("streams the whole body with its cookie (backpressure while held)", async () => {
    const size = 4 * 1024 * 1024;
    const { store, url } = await setup((app) =>
      app.get("/big", (req, res) => {
        req.session.visits = 1;
        res.type("application/octet-stream");
        Readable.from((function* () {
          for (let i = 0; i < size / 65536; i++) yield Buffer.alloc(65536, i % 256);
        })()).pipe(res);
      }),
    );
    store.writeDelayMs = 100;
    const response = await observedRequest(`${url}/big`).done;
    expect(response.body.length).toBe(size);
    sid(response.headers["set-cookie"]);
  });

  it("answers HEAD with the cookie and no body", async () => {
    const { store, url } = await setup((app) =>
      app.get("/page", (req, res) => {
        req.session.visits = 1;
        res.send("hello");
      }),
    );
    const response = await observedRequest(`${url}/page`, { method: "HEAD" }).done;
    expect(response.status).toBe(200);
    expect(response.body).toBe("");
    expect(response.headers["content-length"]).toBe("5");
    const cookie = sid(response.headers["set-cookie"]);
    expect(store.writes()).toBe(1);
    expect((await request(url, "/me", { cookie })).json()).toEqual({ visits: 1 });
  });

  it("keeps the app's own Set-Cookie from writeHead (object and raw array forms) next to ours", async () => {
    const { url } = await setup((app) => {
      app.get("/object", (req, res) => {
        req.session.visits = 1;
        res.setHeader("Set-Cookie", "early=1");
        res.writeHead(201, "Made", { "Set-Cookie": ["theme=dark"], "X-Test": "yes" });
        res.end();
      });
      app.get("/array", (req, res) => {
        req.session.visits = 1;
        res.writeHead(200, ["Set-Cookie", "a=1", "Set-Cookie", "b=2"]);
        res.end();
      });
    });
    const object = await observedRequest(`${url}/object`).done;
    expect(object.status).toBe(201);
    expect(object.headers["x-test"]).toBe("yes");
    // writeHead's headers replace a header set before, as Node does; ours is added after them.
    expect((object.headers["set-cookie"] ?? []).map((c) => parseSetCookie(c).name)).toEqual(["theme", "sid"]);
    const array = await observedRequest(`${url}/array`).done;
    expect((array.headers["set-cookie"] ?? []).map((c) => parseSetCookie(c).name)).toEqual(["a", "b", "sid"]);
  });

  it("writes changes made after the head went out before the response ends", async () => {
    const { store, url } = await setup((app) =>
      app.get("/stream", (req, res) => {
        req.session.visits = 1;
        res.write("a");
        setTimeout(() => {
          req.session.visits = 2;
          res.end("b");
        }, 20);
      }),
    );
    const response = await observedRequest(`${url}/stream`).done;
    expect(response.body).toBe("ab");
    const cookie = sid(response.headers["set-cookie"]);
    expect(store.writes()).toBe(2);
    expect((await request(url, "/me", { cookie })).json()).toEqual({ visits: 2 });
  });

  it("survives a client that goes away while the write is held", async () => {
    const { store, url } = await setup((app) =>
      app.post("/go", (req, res) => {
        req.session.visits = 1;
        res.write("a");
        res.end("b");
      }),
    );
    const gate = store.holdWrites();
    const controller = new AbortController();
    const aborted = fetch(`${url}/go`, { method: "POST", signal: controller.signal }).catch((err: unknown) => err);
    await gate.arrived;
    controller.abort();
    expect(await aborted).toBeInstanceOf(Error);
    await settle();
    gate.open();
    await settle();
    expect(store.writes()).toBe(1);
    expect((await request(url, "/me")).status).toBe(200);
  });

  it("calls the app's end callback and loads once when the same instance is mounted twice", async () => {
    let ended = false;
    const store = new InstrumentedStore(new MemoryStore({ quiet: true }));
    const app = expressModule();
    const session = expressSession({ store, secret: SECRET });
    app.use(session);
    app.use(session);
    app.get("/me", (req, res) => {
      res.json({ visits: req.session.visits ?? null });
    });
    app.post("/cb", (req, res) => {
      req.session.visits = 1;
      res.end("x", () => {
        ended = true;
      });
    });
    const server = await listen(createServer(app));
    running.push(server);
    const url = server.url;
    const cookie = sid((await observedRequest(`${url}/cb`, { method: "POST" }).done).headers["set-cookie"]);
    expect(ended).toBe(true);
    store.calls.length = 0;
    expect((await request(url, "/me", { cookie })).json()).toEqual({ visits: 1 });
    expect(store.count("get")).toBe(1);
  });
});

describe("how the hold is made", () => {
  it("does not hold a response whose session changed nothing: end() ends it at once", async () => {
    const endedAtOnce: boolean[] = [];
    const endAndLook = (change: boolean) => (req: Request, res: Response) => {
      if (change) req.session.visits = 1;
      res.end("x");
      // Bytes on the socket, not res.writableEnded: a held end() reads as ended, as it would without the binding.
      endedAtOnce.push((res.socket?.bytesWritten ?? 0) > 0);
    };
    const { url } = await setup((app) => {
      app.get("/look", endAndLook(false));
      app.post("/look", endAndLook(true));
    });
    expect((await observedRequest(`${url}/look`).done).body).toBe("x");
    const changed = await observedRequest(`${url}/look`, { method: "POST" }).done;
    sid(changed.headers["set-cookie"]);
    expect(endedAtOnce).toEqual([true, false]);
  });

  it("holds a response that a mounted app leaves to its parent to answer", async () => {
    const store = new InstrumentedStore(new MemoryStore({ quiet: true }));
    const parent = expressModule();
    const child = expressModule();
    child.use(expressSession({ store, secret: SECRET }));
    child.use((req, _res, next) => {
      req.session.visits = 7;
      next();
    });
    parent.use("/child", child);
    parent.use((req, res) => {
      res.send(`parent answered, visits ${String((req.session as { visits?: number } | undefined)?.visits)}`);
    });
    const server = await listen(createServer(parent));
    running.push(server);
    const response = await heldUntilWritten(store, `${server.url}/child/anything`);
    expect(response.body).toBe("parent answered, visits 7");
    sid(response.headers["set-cookie"]);
    expect(store.writes()).toBe(1);
  });

  for (const order of ["before", "after"] as const) {
    it(`works with a middleware that wraps res.write and res.end ${order} it (as compression does)`, async () => {
      let wrapped = 0;
      const wrap: RequestHandler = (_req, res, next) => {
        const { write, end } = res;
        res.write = function (this: Response, ...args: Parameters<Response["write"]>) {
          wrapped++;
          return Reflect.apply(write, this, args) as boolean;
        } as Response["write"];
        res.end = function (this: Response, ...args: Parameters<Response["end"]>) {
          wrapped++;
          return Reflect.apply(end, this, args) as Response;
        } as Response["end"];
        next();
      };
      const store = new InstrumentedStore(new MemoryStore({ quiet: true }));
      const app = expressModule();
      if (order === "before") app.use(wrap);
      app.use(expressSession({ store, secret: SECRET }));
      if (order === "after") app.use(wrap);
      app.post("/go", (req, res) => {
        req.session.visits = 1;
        res.write("a");
        res.end("b");
      });
      app.get("/me", (req, res) => void res.json({ visits: req.session.visits ?? null }));
      const server = await listen(createServer(app));
      running.push(server);
      const response = await heldUntilWritten(store, `${server.url}/go`, { method: "POST" });
      expect(response.body).toBe("ab");
      expect(wrapped).toBeGreaterThanOrEqual(2);
      const cookie = sid(response.headers["set-cookie"]);
      expect((await request(server.url, "/me", { cookie })).json()).toEqual({ visits: 1 });
    });
  }

  it("leaves responses outside its mount path, and other apps of the process, as Express sends them", async () => {
    const { url } = await setup(() => undefined);
    const other = expressModule();
    other.get("/plain", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("a");
      res.end("b");
    });
    const server = await listen(createServer(other));
    running.push(server);
    const response = await observedRequest(`${server.url}/plain`).done;
    expect(response.body).toBe("ab");
    expect(response.headers["set-cookie"]).toBeUndefined();
    expect((await request(url, "/me")).json()).toEqual({ visits: null });
  });
});

describe("failures", () => {
  const seen: unknown[] = [];
  const jsonErrors: ErrorRequestHandler = (err: { status?: number; message: string }, _req, res, _next) => {
    seen.push(err);
    res.status(err.status ?? 500).json({ error: err.message });
  };
  afterEach(() => {
    seen.length = 0;
  });

  it("a failed load goes to the app's error handler with Retry-After", async () => {
    const { store, url } = await setup((app) => {
      app.post("/login", (req, res) => {
        req.session.visits = 1;
        res.end();
      });
      app.use(jsonErrors);
    }, { retryAfter: 9 });
    const cookie = sessionCookie(await request(url, "/login", { method: "POST" }));
    store.faults.set("get", "throw");
    const response = await request(url, "/me", { cookie: cookieHeader(cookie) });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("9");
    expect(seen[0]).toBeInstanceOf(StoreUnavailableError);
  });

  it("a failed commit after the app answered goes to its error handler instead of that answer", async () => {
    const { store, url } = await setup((app) => {
      app.use((_req, res, next) => {
        res.setHeader("Access-Control-Allow-Origin", "https://app.example");
        next();
      });
      app.post("/go", (req, res) => {
        req.session.visits = 1;
        res.set("ETag", '"abc"').json({ ok: true });
      });
      app.use(jsonErrors);
    });
    store.faults.set("create", "throw");
    const response = await request(url, "/go", { method: "POST" });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("5");
    // The discarded answer's headers are gone (any ETag now is the error body's own).
    expect(response.headers.get("etag")).not.toBe('"abc"');
    expect(response.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(response.setCookies).toEqual([]);
    expect(response.json<{ error: string }>().error).toMatch(/^\[shared-session\]/);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(StoreUnavailableError);
  });

  it("without an error handler, Express's final handler answers 503 with Retry-After", async () => {
    const { store, url } = await setup((app) =>
      app.post("/go", (req, res) => {
        req.session.visits = 1;
        res.redirect(303, "/me");
      }),
    { storeTimeout: 0.3 });
    store.faults.set("create", "hang");
    const response = await request(url, "/go", { method: "POST" });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("5");
    expect(response.headers.get("location")).toBeNull();
  });

  it("a failed commit while the app streams is answered 503 and the app's later writes go nowhere", async () => {
    let laterWrite: boolean | undefined;
    const { store, url } = await setup((app) =>
      app.get("/stream", (req, res) => {
        req.session.visits = 1;
        res.write("a");
        setTimeout(() => {
          laterWrite = res.write("b");
          res.end("c");
        }, 50);
      }),
    );
    store.faults.set("create", "throw");
    const response = await observedRequest(`${url}/stream`).done;
    expect(response.status).toBe(503);
    expect(response.headers["retry-after"]).toBe("5");
    expect(response.body).toBe("503 Service Unavailable\n");
    await settle(100);
    expect(laterWrite).toBe(false);
    // The process is fine and keeps serving.
    expect((await request(url, "/me")).status).toBe(200);
  });

  it("a failed write after the head went out cuts the response instead of pretending it completed", async () => {
    const { store, url } = await setup((app) =>
      app.get("/stream", (req, res) => {
        req.session.visits = 1;
        res.write("a");
        setTimeout(() => {
          store.faults.set("update", "throw");
          store.faults.set("compareAndSet", "throw");
          req.session.visits = 2;
          res.end("b");
        }, 50);
      }),
    );
    await expect(observedRequest(`${url}/stream`).done).rejects.toThrow();
    expect((await request(url, "/me")).status).toBe(200);
  });

  it("an invalid status code still throws in the app's own call", async () => {
    const { url } = await setup((app) => {
      app.get("/bad", (req, res) => {
        req.session.visits = 1;
        res.statusCode = 42;
        res.end("x");
      });
      app.use(jsonErrors);
    });
    const response = await request(url, "/bad");
    expect(response.status).toBe(500);
    expect(response.json<{ error: string }>().error).toMatch(/invalid status code/);
  });
});
