import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import {
  ManagedServer,
  PORT_TAKEN,
  PortTakenError,
  STARTUP_TIMEOUT_MS,
  memcachedUserArgs,
  serverLabel,
  type LaunchedServer,
  type Launcher,
  type ServerKind,
  type ServerSpec,
} from "./launcher.js";
import { processStartTime, sleep, threadStates, waitFor, waitUntilAllThreadsStopped, waitUntilReady } from "./probe.js";
import { track } from "./reaper.js";

/** The Debian package that ships each program. */
export const DEBIAN_PACKAGE: Record<string, string> = {
  "redis-server": "redis-server",
  "redis-sentinel": "redis-sentinel",
  memcached: "memcached",
};

/** The absolute path of `program` on PATH, or undefined. */
export function findOnPath(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

interface Program {
  path: string;
  name: string;
  /** Arguments appended after the spec's own. */
  trailing: string[];
  leading: string[];
}

function missing(program: string): Error {
  return new Error(
    `test-services: ${program} is not on PATH. Install the Debian package ${DEBIAN_PACKAGE[program] ?? program} ` +
      `(apt-get install redis-server redis-sentinel memcached), or Docker (see README, "Running the tests").`,
  );
}

/** Which program serves `kind` here, or an error naming the package to install. */
export function programFor(kind: ServerKind): Program | Error {
  if (kind === "memcached") {
    const path = findOnPath("memcached");
    const runsAsRoot = process.getuid?.() === 0;
    return path ? { path, name: "memcached", leading: memcachedUserArgs(runsAsRoot), trailing: [] } : missing("memcached");
  }
  const server = findOnPath("redis-server");
  if (kind === "redis") return server ? { path: server, name: "redis-server", leading: [], trailing: [] } : missing("redis-server");
  const sentinel = findOnPath("redis-sentinel");
  if (sentinel) return { path: sentinel, name: "redis-sentinel", leading: [], trailing: [] };
  // redis-sentinel is the same binary under another name; redis-server runs it with --sentinel.
  return server ? { path: server, name: "redis-server", leading: [], trailing: ["--sentinel"] } : missing("redis-sentinel");
}

/** A server run as a child process of the test process. */
class ProcessServer extends ManagedServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private hasExited = true;
  private untrack: () => void = () => undefined;
  private readonly output: string[] = [];

  constructor(
    private readonly program: Program,
    private readonly spec: ServerSpec,
    private readonly dir: string,
  ) {
    super({ host: "127.0.0.1", port: spec.port }, serverLabel(program.name, { host: "127.0.0.1", port: spec.port }, "binaries"));
  }

  private describe(): string {
    return `${this.label}: ${this.program.path} ${this.args().join(" ")}\n--- output ---\n${this.output.join("")}`;
  }

  private args(): string[] {
    return [...this.program.leading, ...this.spec.args, ...this.program.trailing];
  }

  private record(chunk: Buffer): void {
    this.output.push(chunk.toString("utf8"));
    if (this.output.length > 40) this.output.shift();
  }

  protected async doStart(): Promise<void> {
    const child = spawn(this.program.path, this.args(), { cwd: this.dir, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    this.hasExited = false;
    this.exited = new Promise((resolve) => {
      child.once("exit", () => {
        this.hasExited = true;
        this.untrack();
        resolve();
      });
      child.once("error", (error) => {
        this.output.push(`spawn failed: ${error.message}\n`);
        this.hasExited = true;
        resolve();
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on("data", (chunk: Buffer) => this.record(chunk));
      // The server must not keep the test process alive; its exit hook and reaper end it.
      if (stream instanceof net.Socket) stream.unref();
    }
    child.unref();
    if (child.pid !== undefined) this.untrack = track({ type: "pid", pid: child.pid, startTime: processStartTime(child.pid) });
    try {
      await waitUntilReady(this.address, this.spec.kind === "memcached" ? "memcached" : "redis", {
        timeoutMs: STARTUP_TIMEOUT_MS,
        exited: () => this.hasExited,
        describe: () => this.describe(),
      });
    } catch (error) {
      await this.kill();
      const message = error instanceof Error ? error.message : String(error);
      if (PORT_TAKEN.test(this.output.join(""))) throw new PortTakenError(message);
      throw new Error(`test-services: ${this.label} ${message}`, { cause: error });
    }
  }

  private async kill(): Promise<void> {
    if (this.hasExited || !this.child) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  protected async doStop(): Promise<void> {
    if (this.hasExited || !this.child) return;
    this.child.kill("SIGTERM");
    const timeout = sleep(5_000).then(() => "timeout" as const);
    if ((await Promise.race([this.exited, timeout])) === "timeout") await this.kill();
  }

  private pid(): number {
    const pid = this.child?.pid;
    if (pid === undefined || this.hasExited) throw new Error(`test-services: ${this.label} is not running\n${this.describe()}`);
    return pid;
  }

  protected async doPause(): Promise<void> {
    const pid = this.pid();
    process.kill(pid, "SIGSTOP");
    await waitUntilAllThreadsStopped(pid);
  }

  protected async doResume(): Promise<void> {
    const pid = this.pid();
    process.kill(pid, "SIGCONT");
    if (threadStates(pid) === undefined) return;
    await waitFor(() => !(threadStates(pid) ?? []).includes("T"), `${this.label} did not continue after SIGCONT`, 5_000, 5);
  }

  protected async doClose(): Promise<void> {
    await this.kill();
    this.untrack();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Starts servers from the `redis-server`, `redis-sentinel` and `memcached` binaries on PATH. */
export class BinariesLauncher implements Launcher {
  readonly name = "binaries";

  async launch(spec: ServerSpec): Promise<LaunchedServer> {
    const program = programFor(spec.kind);
    if (program instanceof Error) throw program;
    // Each server gets its own directory: cluster state, sentinel config; removed on close.
    const dir = await mkdtemp(join(tmpdir(), `shared-session-${spec.kind}-`));
    for (const file of spec.files ?? []) await writeFile(join(dir, file.name), file.content);
    const server = new ProcessServer(program, spec, dir);
    try {
      await server.start();
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }
}
