/**
 * Runs the example apps (`examples/*.mjs`) as real processes against the built package, and talks
 * to them the way a browser does. Used by the example, cross-process and memory tests and by
 * `npm run demo`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The runnable examples, by file name in `examples/`. */
export type ExampleName = "node-http" | "express" | "koa" | "fastify";
export const EXAMPLES: readonly ExampleName[] = ["node-http", "express", "koa", "fastify"];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// The build the examples import (`shared-session/...` resolves to dist/ through the package's self-reference)
// ---------------------------------------------------------------------------------------------

/** What the examples load from dist/ (ESM), plus what the build reads. */
const DIST_FILES = ["index.js", "redis.js", "memcached.js", "express.js", "koa.js", "fastify.js"];
const SOURCE_DIRS = ["src", "adapters"];
const SOURCE_FILES = ["tsup.config.ts", "package.json"];
const LOCK_DIR = join(REPO_ROOT, "node_modules", ".cache", "shared-session-build.lock");

function newestSource(): number {
  let newest = 0;
  const visit = (path: string): void => {
    const info = statSync(path);
    if (info.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry));
    else if (/\.(ts|mts|cts|js|mjs|json)$/.test(path)) newest = Math.max(newest, info.mtimeMs);
  };
  for (const dir of SOURCE_DIRS) visit(join(REPO_ROOT, dir));
  for (const file of SOURCE_FILES) newest = Math.max(newest, statSync(join(REPO_ROOT, file)).mtimeMs);
  return newest;
}

/** Why dist/ cannot be used as is, or undefined when it is built and newer than every source. */
export function distProblem(): string | undefined {
  let oldest = Infinity;
  for (const file of DIST_FILES) {
    const path = join(REPO_ROOT, "dist", file);
    if (!existsSync(path)) return `dist/${file} is missing`;
    oldest = Math.min(oldest, statSync(path).mtimeMs);
  }
  return oldest < newestSource() ? "dist/ is older than the sources" : undefined;
}

function lockHolderAlive(): boolean {
  try {
    const pid = Number(readFileSync(join(LOCK_DIR, "pid"), "utf8"));
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `npm run build`, asynchronously: the test worker must keep answering its runner meanwhile. */
function runBuild(): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const build = spawn("npm", ["run", "build"], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    build.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    build.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    build.once("error", reject);
    build.once("close", (status) => resolve({ status, output }));
  });
}

/**
 * Makes sure dist/ is built from the current sources: runs `npm run build` when dist/ is missing or
 * stale, once, whichever test file (worker) gets there first; the others wait for it. Throws with
 * the build's output when the build fails: the example tests never run against a missing build.
 */
export async function ensureBuilt(): Promise<void> {
  mkdirSync(join(LOCK_DIR, ".."), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
    } catch {
      // Another worker is building (or checking): wait, unless it died holding the lock.
      await sleep(200);
      if (existsSync(LOCK_DIR) && !lockHolderAlive() && Date.now() - statSync(LOCK_DIR).mtimeMs > 2_000) {
        rmSync(LOCK_DIR, { recursive: true, force: true });
      }
      continue;
    }
    try {
      writeFileSync(join(LOCK_DIR, "pid"), String(process.pid));
      const problem = distProblem();
      if (problem === undefined) return;
      const build = await runBuild();
      if (build.status !== 0) throw new Error(`${problem}, and \`npm run build\` failed (status ${String(build.status)}):\n${build.output}`);
      // Only presence now: a source edited while the build ran is for the next run to pick up.
      const missing = DIST_FILES.find((file) => !existsSync(join(REPO_ROOT, "dist", file)));
      if (missing !== undefined) throw new Error(`\`npm run build\` ran but dist/${missing} is missing`);
      return;
    } finally {
      rmSync(LOCK_DIR, { recursive: true, force: true });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// App processes
// ---------------------------------------------------------------------------------------------

/** Options of {@link AppProcess.start}. */
export interface StartAppOptions {
  /**
   * Added to the environment: `REDIS_URL` or `MEMCACHED_SERVERS`, `SESSION_COOKIE_NAME`, …
   * `undefined` removes a variable (the examples prefer `REDIS_URL` when both are set).
   */
  env: Record<string, string | undefined>;
  /** Listening port; 0 (the default) lets the system pick one. */
  port?: number;
  /** Node flags before the script, such as `--expose-gc`. */
  nodeArgs?: string[];
  /** Open an IPC channel to the process (`child.send`). */
  ipc?: boolean;
  /** Script to run instead of `examples/<name>.mjs`, relative to the repository root. */
  script?: string;
  /**
   * Milliseconds to wait for the "on http://…" line.
   * @default 30000
   */
  startupTimeout?: number;
}

/** One running app process, restartable on the same port. */
export class AppProcess {
  #child: ChildProcess;
  #output = "";
  #exited: Promise<number | null>;
  #url: string;

  private constructor(
    readonly name: string,
    private readonly options: StartAppOptions,
    started: { child: ChildProcess; url: string; output: string; exited: Promise<number | null> },
  ) {
    this.#child = started.child;
    this.#url = started.url;
    this.#output = started.output;
    this.#exited = started.exited;
  }

  /** Starts `examples/<name>.mjs` and resolves once it prints the URL it listens on. */
  static async start(name: string, options: StartAppOptions): Promise<AppProcess> {
    return new AppProcess(name, options, await launch(name, options, options.port ?? 0));
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return this.#url;
  }

  get port(): number {
    return Number(new URL(this.#url).port);
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  get child(): ChildProcess {
    return this.#child;
  }

  /** Everything the process wrote to stdout and stderr, for failure messages. */
  get output(): string {
    return this.#output;
  }

  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  get exited(): Promise<number | null> {
    return this.#exited;
  }

  /** Sends `signal` (SIGKILL: a crash, nothing runs) and resolves with the exit code once it is gone. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill(signal);
    return this.#exited;
  }

  /** Starts the app again on the same port (after {@link kill}); the old process must be gone. */
  async restart(): Promise<void> {
    await this.kill();
    const started = await launch(this.name, this.options, this.port);
    this.#child = started.child;
    this.#url = started.url;
    this.#output += `\n--- restarted ---\n${started.output}`;
    this.#exited = started.exited;
  }
}

const running = new Set<ChildProcess>();
let exitHook = false;

async function launch(
  name: string,
  options: StartAppOptions,
  port: number,
): Promise<{ child: ChildProcess; url: string; output: string; exited: Promise<number | null> }> {
  if (!exitHook) {
    exitHook = true;
    // No app may outlive the test run or the demo, however it ends.
    process.on("exit", () => {
      for (const child of running) child.kill("SIGKILL");
    });
  }
  const script = options.script ?? join("examples", `${name}.mjs`);
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env, PORT: String(port), HOST: "127.0.0.1", NODE_OPTIONS: "" },
    stdio: options.ipc ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      running.delete(child);
      resolve(code);
    });
  });
  let output = "";
  const timeout = options.startupTimeout ?? 30_000;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} did not print its URL within ${timeout / 1000} s:\n${output}`));
    }, timeout);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString("utf8");
      const match = / on (http:\/\/\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${String(code)}) before listening:\n${output}`));
    });
  });
  // Keep collecting output after start, for failure messages.
  const started = { child, url, output, exited };
  const collect = (chunk: Buffer): void => {
    started.output += chunk.toString("utf8");
  };
  child.stdout?.removeAllListeners("data").on("data", collect);
  child.stderr?.removeAllListeners("data").on("data", collect);
  return started;
}

// ---------------------------------------------------------------------------------------------
// A browser: a cookie jar over fetch
// ---------------------------------------------------------------------------------------------

/** One HTTP answer, redirects not followed. */
export interface Reply {
  readonly status: number;
  readonly location: string | null;
  /** Every `Set-Cookie` header of the answer. */
  readonly setCookies: readonly string[];
  readonly text: string;
}

/** What `GET /me` answers. */
export interface WhoAmI {
  user: string | null;
  count: number;
}

/**
 * Carries cookies between requests like a browser: stores what `Set-Cookie` sets (for every origin
 * alike: the apps all run on 127.0.0.1, where cookies are not port-scoped either), forgets what it
 * expires, and sends them back. Redirects are not followed, so each answer can be inspected.
 */
export class Browser {
  readonly cookies = new Map<string, string>();

  constructor(readonly cookieName = "sid") {}

  /** The session id the session cookie carries (`<id>.<signature>`), or undefined. */
  get sessionId(): string | undefined {
    const value = this.cookies.get(this.cookieName);
    return value === undefined ? undefined : value.slice(0, value.lastIndexOf("."));
  }

  get cookieHeader(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }

  async request(base: string, method: "GET" | "POST", path: string, form?: Record<string, string>): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (this.cookies.size > 0) headers.cookie = this.cookieHeader;
    let body: string | undefined;
    if (form !== undefined) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(form).toString();
    } else if (method === "POST") {
      body = "";
    }
    const response = await fetch(new URL(path, base), { method, headers, body, redirect: "manual" });
    const setCookies = response.headers.getSetCookie();
    for (const line of setCookies) this.#store(line);
    return { status: response.status, location: response.headers.get("location"), setCookies, text: await response.text() };
  }

  get(base: string, path: string): Promise<Reply> {
    return this.request(base, "GET", path);
  }

  post(base: string, path: string, form?: Record<string, string>): Promise<Reply> {
    return this.request(base, "POST", path, form);
  }

  /** `GET /me`, parsed; throws on anything but 200. */
  async whoami(base: string): Promise<WhoAmI> {
    const reply = await this.get(base, "/me");
    if (reply.status !== 200) throw new Error(`GET ${base}/me answered ${reply.status}: ${reply.text}`);
    return JSON.parse(reply.text) as WhoAmI;
  }

  #store(line: string): void {
    const [pair = "", ...attributes] = line.split(";");
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attributes.some((attribute) => {
      const [key = "", val = ""] = attribute.split("=").map((part) => part.trim());
      if (key.toLowerCase() === "max-age") return Number(val) <= 0;
      if (key.toLowerCase() === "expires") return Date.parse(val) <= Date.now();
      return false;
    });
    if (expired || value === "") this.cookies.delete(name);
    else this.cookies.set(name, value);
  }
}

/** Runs `work` over `items` with at most `limit` at a time; rejects with the first failure. */
export async function inParallel<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      await work(items[index] as T, index);
    }
  });
  await Promise.all(workers);
}
