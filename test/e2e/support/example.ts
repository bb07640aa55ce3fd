/**
 * Runs one of the repository's examples (`examples/<name>.mjs`, which import the BUILT package)
 * as its own process on a free port, the way a user runs it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The secret the browser tests start the examples with (SESSION_SECRET). */
export const E2E_SECRET = "e2e-secret-that-is-at-least-32-characters-long";

/** The examples, by file name, with the name each puts in its page title. */
export const EXAMPLES = {
  "node-http": "node:http",
  express: "express",
  koa: "koa",
  fastify: "fastify",
} as const;

export type ExampleName = keyof typeof EXAMPLES;

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** Settings the examples read from their environment. */
export interface ExampleSettings {
  /** The store (`REDIS_URL`). */
  redisUrl: string;
  /** `TRUST_PROXY=1`: believe `X-Forwarded-Proto` (each framework's own trust-proxy setting). @default false */
  trustProxy?: boolean;
  /** `SESSION_COOKIE_NAME`, e.g. `__Host-sid`. @default the library's default, `sid` */
  cookieName?: string;
}

/** A running example process. */
export interface RunningExample {
  readonly name: ExampleName;
  /** `http://127.0.0.1:<port>` as the example printed it. */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM (the examples close gracefully), SIGKILL after 5 s. */
  stop(): Promise<void>;
}

/** Fails with the build command when the package was not built: the examples import `dist/`. */
export function assertBuilt(): void {
  if (!existsSync(`${repoRoot}dist/index.js`)) {
    throw new Error("[e2e] dist/ is missing: the examples import the built package. Run `npm run build` (npm run test:e2e does).");
  }
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** An example must not outlive the test process, even when a test never reaches its `stop()`. */
function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const running of live) running.kill("SIGKILL");
  });
}

/** Starts several examples at once; if one fails to start, stops the others and rethrows. */
export async function startExamples(name: ExampleName, settings: ExampleSettings, count: number): Promise<RunningExample[]> {
  const results = await Promise.allSettled(Array.from({ length: count }, () => startExample(name, settings)));
  const failure = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
  const started = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  if (failure) {
    await Promise.all(started.map((app) => app.stop()));
    throw failure.reason;
  }
  return started;
}

/** Starts `examples/<name>.mjs` with `PORT=0` and resolves once it prints the URL it listens on. */
export function startExample(name: ExampleName, settings: ExampleSettings): Promise<RunningExample> {
  assertBuilt();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: "production",
    REDIS_URL: settings.redisUrl,
    PORT: "0",
    HOST: "127.0.0.1",
    SESSION_SECRET: E2E_SECRET,
  };
  if (settings.trustProxy === true) env.TRUST_PROXY = "1";
  if (settings.cookieName !== undefined) env.SESSION_COOKIE_NAME = settings.cookieName;

  const child: ChildProcess = spawn(process.execPath, [`examples/${name}.mjs`], {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  killOnExit(child);
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };

  return new Promise<RunningExample>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`[e2e] examples/${name}.mjs printed no URL within 20 s; output:\n${output}`));
    }, 20_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString("utf8");
      const match = /on (http:\/\/127\.0\.0\.1:(\d+))/.exec(output);
      if (match && child.pid !== undefined) {
        clearTimeout(timer);
        resolve({ name, url: match[1]!, port: Number(match[2]), pid: child.pid, output: () => output, stop });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`[e2e] examples/${name}.mjs exited (${signal ?? code}) before listening; output:\n${output}`));
    });
  });
}
