import type { FaultControls, LauncherName, ServerAddress } from "./types.js";

/** What a server is; decides the program and how readiness is probed. */
export type ServerKind = "redis" | "sentinel" | "memcached";

/** One server to start: program arguments after the program name, with files it reads. */
export interface ServerSpec {
  kind: ServerKind;
  port: number;
  /** Arguments after the program. Relative paths resolve in the server's own writable directory. */
  args: string[];
  /** Files written into that directory before the first start (e.g. a sentinel config). */
  files?: { name: string; content: string }[];
}

/** A started server with its fault controls. */
export interface LaunchedServer extends FaultControls {
  readonly address: ServerAddress;
  /** Removes the server (and its files) for good; safe to call twice. */
  close(): Promise<void>;
}

/** Starts servers one way: local binaries or containers. */
export interface Launcher {
  readonly name: LauncherName;
  /** Starts the server and resolves once it answers. Rejects with {@link PortTakenError} on a lost port race. */
  launch(spec: ServerSpec): Promise<LaunchedServer>;
}

/** The port was taken between picking it and binding it; the caller picks another one. */
export class PortTakenError extends Error {
  override name = "PortTakenError";
}

export const PORT_TAKEN = /address already in use/i;

export const STARTUP_TIMEOUT_MS = 30_000;

/** The server states fault controls move between. */
export type RunState = "running" | "stopped" | "paused" | "closed";

/** Memcached refuses to run as root unless told which user to run as. */
export function memcachedUserArgs(runsAsRoot: boolean): string[] {
  return runsAsRoot ? ["-u", "root"] : [];
}

/**
 * Applies the fault-control state machine shared by both launchers: stop/start/pause/resume are
 * idempotent, a paused server is resumed before it is stopped, and nothing works after close.
 */
export abstract class ManagedServer implements LaunchedServer {
  protected state: RunState = "stopped";
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly address: ServerAddress,
    protected readonly label: string,
  ) {}

  protected abstract doStart(): Promise<void>;
  protected abstract doStop(): Promise<void>;
  protected abstract doPause(): Promise<void>;
  protected abstract doResume(): Promise<void>;
  protected abstract doClose(): Promise<void>;

  /** Operations run one after the other, whatever the caller awaits. */
  private serial<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.queue.then(operation);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private assertOpen(action: string): void {
    if (this.state === "closed") throw new Error(`test-services: cannot ${action} ${this.label}: it was closed`);
  }

  start(): Promise<void> {
    return this.serial(async () => {
      this.assertOpen("start");
      if (this.state === "running") return;
      if (this.state === "paused") throw new Error(`test-services: ${this.label} is paused; resume() it instead`);
      await this.doStart();
      this.state = "running";
    });
  }

  stop(): Promise<void> {
    return this.serial(async () => {
      this.assertOpen("stop");
      if (this.state === "stopped") return;
      if (this.state === "paused") {
        await this.doResume();
        this.state = "running";
      }
      await this.doStop();
      this.state = "stopped";
    });
  }

  pause(): Promise<void> {
    return this.serial(async () => {
      this.assertOpen("pause");
      if (this.state === "paused") return;
      if (this.state === "stopped") throw new Error(`test-services: ${this.label} is stopped; start() it first`);
      await this.doPause();
      this.state = "paused";
    });
  }

  resume(): Promise<void> {
    return this.serial(async () => {
      this.assertOpen("resume");
      if (this.state !== "paused") return;
      await this.doResume();
      this.state = "running";
    });
  }

  close(): Promise<void> {
    return this.serial(async () => {
      if (this.state === "closed") return;
      this.state = "closed";
      await this.doClose();
    });
  }
}

/** Names the launcher in errors: `redis-server on 127.0.0.1:12345 (binaries)`. */
export function serverLabel(program: string, address: ServerAddress, launcher: LauncherName): string {
  return `${program} on ${address.host}:${address.port} (${launcher})`;
}
