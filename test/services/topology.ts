import { Redis } from "ioredis";
import { PortTakenError, type LaunchedServer, type Launcher, type ServerSpec } from "./launcher.js";
import { pickPort } from "./ports.js";
import { waitFor } from "./probe.js";
import type {
  MemcachedHandle,
  MemcachedServer,
  RedisClusterHandle,
  RedisHandle,
  RedisSentinelHandle,
  RedisServer,
  ServerAddress,
} from "./types.js";

/** Options of {@link startClusterOn}. */
export interface ClusterOptions {
  /**
   * Replicas per master; each follows one master and can take over its slots.
   * @default 0
   */
  replicasPerMaster?: number;
}

/** Options of {@link startSentinelOn}. */
export interface SentinelOptions {
  /**
   * Number of sentinels: 1 (quorum 1) or 3 (quorum 2).
   * @default 1
   */
  sentinels?: 1 | 3;
  /**
   * Name of the monitored master.
   * @default "mymaster"
   */
  name?: string;
}

const CLUSTER_SLOTS = 16_384;
const CLUSTER_MASTERS = 3;

/** Picks a port, starts the server there, and picks another port when it lost a race for it. */
async function launchOnFreePort(
  launcher: Launcher,
  spec: (port: number) => ServerSpec,
  options: { clusterBus?: boolean } = {},
): Promise<LaunchedServer> {
  for (let attempt = 1; ; attempt++) {
    const port = await pickPort(options);
    try {
      return await launcher.launch(spec(port));
    } catch (error) {
      if (!(error instanceof PortTakenError) || attempt >= 5) throw error;
    }
  }
}

/** Starts all, or closes the ones that started and rethrows the first failure. */
async function launchAll(starts: (() => Promise<LaunchedServer>)[]): Promise<LaunchedServer[]> {
  const results = await Promise.allSettled(starts.map((start) => start()));
  const failure = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
  if (failure) {
    await closeAll(results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : [])));
    throw failure.reason;
  }
  return results.map((result) => (result as PromiseFulfilledResult<LaunchedServer>).value);
}

async function closeAll(servers: LaunchedServer[]): Promise<void> {
  const results = await Promise.allSettled(servers.map((server) => server.close()));
  const failure = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
  if (failure) throw failure.reason;
}

/**
 * No persistence: a stopped server starts empty, and nothing is written but cluster state.
 * Replicas sync at once instead of after the default 5 s wait for other replicas.
 */
function redisArgs(port: number): string[] {
  return [
    ...["--port", String(port), "--bind", "127.0.0.1", "--protected-mode", "no"],
    ...["--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"],
  ];
}

function redisServer(server: LaunchedServer): RedisServer {
  const { host, port } = server.address;
  return {
    host,
    port,
    url: `redis://${host}:${port}`,
    stop: () => server.stop(),
    start: () => server.start(),
    pause: () => server.pause(),
    resume: () => server.resume(),
  };
}

/** A short-lived admin connection that fails instead of retrying. */
async function withAdmin<T>(address: ServerAddress, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({
    host: address.host,
    port: address.port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2_000,
    commandTimeout: 5_000,
  });
  redis.on("error", () => undefined);
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

function infoField(info: string, field: string): string | undefined {
  const line = info.split("\r\n").find((candidate) => candidate.startsWith(`${field}:`));
  return line?.slice(field.length + 1);
}

/** Options of {@link startRedisOn}. */
export interface RedisOptions {
  /**
   * Extra `redis-server` arguments, after the defaults (which set the port, bind to 127.0.0.1 and
   * turn persistence off), e.g. `["--rename-command", "GETEX", ""]` to mimic an older server.
   * @default []
   */
  args?: string[];
}

/** Starts one standalone Redis server. */
export async function startRedisOn(launcher: Launcher, options: RedisOptions = {}): Promise<RedisHandle> {
  const extra = options.args ?? [];
  const server = await launchOnFreePort(launcher, (port) => ({ kind: "redis", port, args: [...redisArgs(port), ...extra] }));
  return { ...redisServer(server), close: () => server.close() };
}

/**
 * Starts a Redis Cluster: 3 masters with a third of the slots each, plus optional replicas,
 * and resolves once every node reports `cluster_state:ok` and knows every other node.
 */
export async function startClusterOn(launcher: Launcher, options: ClusterOptions = {}): Promise<RedisClusterHandle> {
  const replicasPerMaster = options.replicasPerMaster ?? 0;
  const total = CLUSTER_MASTERS * (1 + replicasPerMaster);
  const servers = await launchAll(
    Array.from({ length: total }, () => () =>
      launchOnFreePort(
        launcher,
        (port) => ({
          kind: "redis",
          port,
          args: [
            ...redisArgs(port),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            // Small enough for failover tests, large enough not to flap on a busy 2-core machine.
            "--cluster-node-timeout",
            "2000",
            "--cluster-announce-ip",
            "127.0.0.1",
          ],
        }),
        { clusterBus: true },
      ),
    ),
  );
  try {
    const masters = servers.slice(0, CLUSTER_MASTERS);
    const replicas = servers.slice(CLUSTER_MASTERS);
    const first = masters[0];
    if (!first) throw new Error("test-services: no cluster master started");
    await Promise.all(
      masters.map((master, index) =>
        withAdmin(master.address, async (redis) => {
          const from = Math.floor((CLUSTER_SLOTS * index) / CLUSTER_MASTERS);
          const to = Math.floor((CLUSTER_SLOTS * (index + 1)) / CLUSTER_MASTERS) - 1;
          const slots = Array.from({ length: to - from + 1 }, (_, offset) => String(from + offset));
          // Distinct epochs, as redis-cli --cluster create sets them, so no collision has to be resolved.
          await redis.call("CLUSTER", "SET-CONFIG-EPOCH", String(index + 1));
          await redis.call("CLUSTER", "ADDSLOTS", ...slots);
        }),
      ),
    );
    await withAdmin(first.address, async (redis) => {
      for (const server of servers.slice(1)) {
        await redis.call("CLUSTER", "MEET", server.address.host, String(server.address.port));
      }
    });
    const converged = async (): Promise<boolean> => {
      for (const server of servers) {
        const info = String(await withAdmin(server.address, (redis) => redis.call("CLUSTER", "INFO")));
        if (infoField(info, "cluster_state") !== "ok" || infoField(info, "cluster_known_nodes") !== String(total)) return false;
      }
      return true;
    };
    await waitFor(converged, `Redis Cluster on ${servers.map((s) => s.address.port).join(",")} did not converge`, 30_000);
    if (replicas.length > 0) {
      const masterIds = await Promise.all(masters.map((master) => withAdmin(master.address, (redis) => redis.call("CLUSTER", "MYID"))));
      await Promise.all(
        replicas.map((replica, index) =>
          withAdmin(replica.address, (redis) => redis.call("CLUSTER", "REPLICATE", String(masterIds[index % CLUSTER_MASTERS]))),
        ),
      );
      // Clients discover replicas from CLUSTER SLOTS: wait until every node lists them all.
      await waitFor(
        async () => {
          for (const replica of replicas) {
            const info = await withAdmin(replica.address, (redis) => redis.info("replication"));
            if (infoField(info, "master_link_status") !== "up") return false;
          }
          for (const server of servers) {
            const nodes = String(await withAdmin(server.address, (redis) => redis.call("CLUSTER", "NODES")));
            if (nodes.split("\n").filter((line) => / (myself,)?slave /.test(line)).length !== replicas.length) return false;
          }
          return converged();
        },
        "Redis Cluster replicas did not sync",
        30_000,
      );
    }
    return {
      nodes: servers.map((server) => ({ ...server.address })),
      masters: masters.map(redisServer),
      replicas: replicas.map(redisServer),
      close: () => closeAll(servers),
    };
  } catch (error) {
    await closeAll(servers);
    throw error;
  }
}

/**
 * Starts a master, a replica in sync with it, and sentinels that monitor them, and resolves once
 * the sentinels know the replica (and each other) and could authorise a failover.
 */
export async function startSentinelOn(launcher: Launcher, options: SentinelOptions = {}): Promise<RedisSentinelHandle> {
  const name = options.name ?? "mymaster";
  const count = options.sentinels ?? 1;
  const quorum = count === 1 ? 1 : 2;
  const started: LaunchedServer[] = [];
  try {
    const master = await launchOnFreePort(launcher, (port) => ({ kind: "redis", port, args: redisArgs(port) }));
    started.push(master);
    const { host, port: masterPort } = master.address;
    const replica = await launchOnFreePort(launcher, (port) => ({
      kind: "redis",
      port,
      args: [...redisArgs(port), "--replicaof", host, String(masterPort)],
    }));
    started.push(replica);
    await waitFor(
      async () => infoField(await withAdmin(replica.address, (redis) => redis.info("replication")), "master_link_status") === "up",
      "the Sentinel replica did not sync with its master",
    );
    const sentinels = await launchAll(
      Array.from({ length: count }, () => () =>
        launchOnFreePort(launcher, (port) => ({
          kind: "sentinel",
          port,
          args: ["sentinel.conf"],
          // Sentinel rewrites this file as it learns: it lives in the server's own directory.
          files: [
            {
              name: "sentinel.conf",
              content: [
                `port ${port}`,
                "bind 127.0.0.1",
                "protected-mode no",
                `sentinel monitor ${name} ${host} ${masterPort} ${quorum}`,
                // Fail over within a few seconds of an outage, as the reliability tests need.
                `sentinel down-after-milliseconds ${name} 1000`,
                `sentinel failover-timeout ${name} 5000`,
                `sentinel parallel-syncs ${name} 1`,
                "",
              ].join("\n"),
            },
          ],
        })),
      ),
    );
    started.push(...sentinels);
    await waitFor(
      async () => {
        for (const sentinel of sentinels) {
          const ok = await withAdmin(sentinel.address, async (redis) => {
            const replicas = (await redis.call("SENTINEL", "REPLICAS", name)) as string[][];
            const known = replicas.some((fields) => {
              const record = new Map<string, string>();
              for (let i = 0; i + 1 < fields.length; i += 2) record.set(String(fields[i]), String(fields[i + 1]));
              return record.get("port") === String(replica.address.port) && !/s_down|disconnected/.test(record.get("flags") ?? "");
            });
            if (!known) return false;
            const others = (await redis.call("SENTINEL", "SENTINELS", name)) as unknown[];
            if (others.length !== count - 1) return false;
            return String(await redis.call("SENTINEL", "CKQUORUM", name)).startsWith("OK");
          });
          if (!ok) return false;
        }
        return true;
      },
      `the sentinels on ${sentinels.map((s) => s.address.port).join(",")} did not discover the replica and each other`,
      30_000,
    );
    return {
      name,
      sentinels: sentinels.map((sentinel) => ({ ...sentinel.address })),
      master: redisServer(master),
      replica: redisServer(replica),
      close: () => closeAll(started),
    };
  } catch (error) {
    await closeAll(started);
    throw error;
  }
}

/** Starts `count` independent Memcached servers (a client spreads keys over them). */
export async function startMemcachedOn(launcher: Launcher, count: number): Promise<MemcachedHandle> {
  if (!Number.isInteger(count) || count < 1) throw new Error(`test-services: startMemcached(count) needs count >= 1, got ${count}`);
  const servers = await launchAll(
    Array.from({ length: count }, () => () =>
      launchOnFreePort(launcher, (port) => ({
        kind: "memcached",
        port,
        // -U 0: no UDP listener; 64 MB is plenty for tests.
        args: ["-l", "127.0.0.1", "-p", String(port), "-U", "0", "-m", "64"],
      })),
    ),
  );
  return {
    servers: servers.map((server): MemcachedServer => {
      const { host, port } = server.address;
      return {
        host,
        port,
        address: `${host}:${port}`,
        stop: () => server.stop(),
        start: () => server.start(),
        pause: () => server.pause(),
        resume: () => server.resume(),
      };
    }),
    close: () => closeAll(servers),
  };
}
