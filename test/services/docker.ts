import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type Dockerode from "dockerode";
import { GenericContainer, ImageName, Wait, getContainerRuntimeClient, type ContainerRuntimeClient } from "testcontainers";
import {
  ManagedServer,
  PORT_TAKEN,
  PortTakenError,
  STARTUP_TIMEOUT_MS,
  memcachedUserArgs,
  serverLabel,
  type LaunchedServer,
  type Launcher,
  type ServerSpec,
} from "./launcher.js";
import { sleep, waitUntilReady } from "./probe.js";
import { track } from "./reaper.js";

/** The images the docker provider runs; both default to the official images. */
export interface DockerImages {
  redis: string;
  memcached: string;
}

export const DEFAULT_REDIS_IMAGE = "redis:7.4";
export const DEFAULT_MEMCACHED_IMAGE = "memcached:1.6";

export function dockerImages(env: NodeJS.ProcessEnv = process.env): DockerImages {
  return {
    redis: env.SHARED_SESSION_REDIS_IMAGE || DEFAULT_REDIS_IMAGE,
    memcached: env.SHARED_SESSION_MEMCACHED_IMAGE || DEFAULT_MEMCACHED_IMAGE,
  };
}

/** Names the process that started a container (for `docker ps --filter label=…`). */
export const OWNER_LABEL = "shared-session.test-owner";
/** Names one server's container: the reaper removes it by this label, even when testcontainers failed half-way. */
const SERVER_LABEL = "shared-session.test-server";
const owner = `${hostname()}-${process.pid}`;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

let clientPromise: Promise<ContainerRuntimeClient> | undefined;

/** The Docker engine testcontainers finds (DOCKER_HOST, ~/.testcontainers.properties, the socket). */
export function dockerClient(): Promise<ContainerRuntimeClient> {
  clientPromise ??= withTimeout(getContainerRuntimeClient(), 15_000, "the Docker engine");
  return clientPromise;
}

const imageChecks = new Map<string, Promise<void>>();

/** Resolves when `image` is present locally or could be pulled; rejects saying which and why not. */
export function ensureImage(image: string): Promise<void> {
  let check = imageChecks.get(image);
  if (!check) {
    check = (async () => {
      const client = await dockerClient();
      const name = ImageName.fromString(image);
      if (await client.image.exists(name)) return;
      try {
        await withTimeout(client.image.pull(name), 180_000, `pulling ${image}`);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(
          `image ${image} is not present and cannot be pulled (${reason.split("\n")[0]}); ` +
            `set SHARED_SESSION_REDIS_IMAGE / SHARED_SESSION_MEMCACHED_IMAGE to a local image (scripts/provision.sh builds one)`,
        );
      }
    })();
    imageChecks.set(image, check);
  }
  return check;
}

/**
 * Why the docker provider cannot serve (no engine, images missing), or undefined when it can.
 */
export async function dockerProblem(images: DockerImages = dockerImages()): Promise<string | undefined> {
  try {
    await dockerClient();
  } catch (error) {
    return `no Docker engine reachable (${error instanceof Error ? error.message : String(error)})`;
  }
  try {
    await Promise.all([ensureImage(images.redis), ensureImage(images.memcached)]);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  return undefined;
}

/** Docker's multiplexed log stream: 8-byte frame headers (stream, 0, 0, 0, size) before each chunk. */
function demuxLogs(buffer: Buffer): string {
  let text = "";
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    text += buffer.subarray(offset + 8, offset + 8 + size).toString("utf8");
    offset += 8 + size;
  }
  return text;
}

/** Force-removes every container carrying `label` (`key=value`). */
export async function removeLabelled(client: ContainerRuntimeClient, label: string): Promise<void> {
  const containers = await client.container.dockerode.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(
    containers.map((info) =>
      client.container.dockerode
        .getContainer(info.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined),
    ),
  );
}

function isNotFound(error: unknown): boolean {
  return typeof error === "object" && error !== null && "statusCode" in error && error.statusCode === 404;
}

/**
 * A server in its own container on the host network: the address is the same from the test
 * process, from the other servers (cluster bus, replication) and from what they announce.
 */
class ContainerServer extends ManagedServer {
  private container: Dockerode.Container | undefined;
  private readonly serverId = randomBytes(6).toString("hex");
  private untrack: () => void = () => undefined;

  constructor(
    private readonly image: string,
    private readonly command: string[],
    private readonly spec: ServerSpec,
  ) {
    super({ host: "127.0.0.1", port: spec.port }, serverLabel(command[0] ?? "?", { host: "127.0.0.1", port: spec.port }, "docker"));
  }

  private async logs(): Promise<string> {
    if (!this.container) return "";
    try {
      const raw: unknown = await this.container.logs({ stdout: true, stderr: true, tail: 30, follow: false });
      return Buffer.isBuffer(raw) ? demuxLogs(raw) : String(raw);
    } catch {
      return "(no logs)";
    }
  }

  private async describe(): Promise<string> {
    return `${this.label}: ${this.image} ${this.command.join(" ")}\n--- container log ---\n${await this.logs()}`;
  }

  private async hasExited(): Promise<boolean> {
    if (!this.container) return true;
    const info = await this.container.inspect();
    return !info.State.Running;
  }

  protected async doStart(): Promise<void> {
    const client = await dockerClient();
    if (!this.container) {
      this.untrack = track({ type: "label", label: `${SERVER_LABEL}=${this.serverId}` });
      const started = await this.create(client);
      this.container = client.container.getById(started);
    } else {
      await this.container.start();
    }
    try {
      await waitUntilReady(this.address, this.spec.kind === "memcached" ? "memcached" : "redis", {
        timeoutMs: STARTUP_TIMEOUT_MS,
        exited: () => this.hasExited(),
        describe: () => this.describe(),
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (PORT_TAKEN.test(message)) throw new PortTakenError(message);
      throw new Error(`test-services: ${this.label} ${message}`, { cause: error });
    }
  }

  /** Creates and starts the container; resolves its id. */
  private async create(client: ContainerRuntimeClient): Promise<string> {
    try {
      const started = await new GenericContainer(this.image)
        .withNetworkMode("host")
        .withCommand(this.command)
        .withWorkingDir("/tmp")
        .withCopyContentToContainer(
          (this.spec.files ?? []).map((file) => ({ content: file.content, target: `/tmp/${file.name}`, mode: 0o666 })),
        )
        .withLabels({ [OWNER_LABEL]: owner, [SERVER_LABEL]: this.serverId })
        // Readiness is probed below through the server's own protocol.
        .withWaitStrategy(Wait.forListeningPorts())
        .withStartupTimeout(STARTUP_TIMEOUT_MS)
        .start();
      return started.getId();
    } catch (error) {
      // A container created before the failure would otherwise wait for the reaper.
      await removeLabelled(client, `${SERVER_LABEL}=${this.serverId}`);
      throw new Error(`test-services: could not start ${this.label} from image ${this.image}`, { cause: error });
    }
  }

  protected async doStop(): Promise<void> {
    await this.container?.stop({ t: 5 }).catch((error: unknown) => {
      // 304: already stopped (the server died on its own).
      if (!(typeof error === "object" && error !== null && "statusCode" in error && error.statusCode === 304)) throw error;
    });
  }

  protected async doPause(): Promise<void> {
    // The cgroup freezer stops every thread before the call returns.
    await this.container?.pause();
  }

  protected async doResume(): Promise<void> {
    await this.container?.unpause();
  }

  protected async doClose(): Promise<void> {
    const container = this.container;
    if (!container) {
      this.untrack();
      return;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await container.remove({ force: true, v: true });
        this.untrack();
        return;
      } catch (error) {
        if (isNotFound(error)) {
          this.untrack();
          return;
        }
        // 409: removal already in progress; wait for it.
        if (attempt >= 20) throw error;
        await sleep(250);
      }
    }
  }
}

/**
 * Starts servers as containers through testcontainers, on the host network (the Cluster and
 * Sentinel announce 127.0.0.1, which clients in the test process can reach).
 */
export class DockerLauncher implements Launcher {
  readonly name = "docker";

  constructor(private readonly images: DockerImages = dockerImages()) {}

  async launch(spec: ServerSpec): Promise<LaunchedServer> {
    const image = spec.kind === "memcached" ? this.images.memcached : this.images.redis;
    await ensureImage(image);
    const program = spec.kind === "redis" ? ["redis-server"] : spec.kind === "sentinel" ? ["redis-sentinel"] : ["memcached"];
    // Our imported image runs as root; the official memcached image runs as `memcache`, where
    // memcached ignores `-u`.
    const leading = spec.kind === "memcached" ? memcachedUserArgs(true) : [];
    const server = new ContainerServer(image, [...program, ...leading, ...spec.args], spec);
    try {
      await server.start();
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }
}
