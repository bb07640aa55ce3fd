/**
 * Public types of the test services and the descriptor that vitest's globalSetup hands to test
 * files through `provide`/`inject`.
 */

/** Where a server listens, as seen from the test process. */
export interface ServerAddress {
  host: string;
  port: number;
}

/**
 * Outage controls for servers a test owns (never for the shared ones).
 * All of them resolve once the effect can be observed by a client.
 */
export interface FaultControls {
  /** Stops the server: connections are refused until {@link FaultControls.start}. Data is lost. */
  stop(): Promise<void>;
  /** Starts a stopped server again on the same address and waits until it answers. */
  start(): Promise<void>;
  /** Freezes the server: connections open and requests hang until {@link FaultControls.resume}. */
  pause(): Promise<void>;
  /** Unfreezes a paused server; queued requests are answered. */
  resume(): Promise<void>;
}

/** A Redis server a test owns. */
export interface RedisServer extends ServerAddress, FaultControls {
  /** `redis://127.0.0.1:<port>` */
  url: string;
}

/** A standalone Redis server started for one test file; `close()` removes it. */
export interface RedisHandle extends RedisServer {
  close(): Promise<void>;
}

/** A Redis Cluster started for one test file. */
export interface RedisClusterHandle {
  /** Seed nodes for `new Cluster(nodes)`: every master and replica. */
  nodes: ServerAddress[];
  /** The masters as created, each serving a third of the hash slots. */
  masters: RedisServer[];
  /** Replicas as created (`replicas[i]` follows `masters[i]`); empty unless requested. */
  replicas: RedisServer[];
  close(): Promise<void>;
}

/** A Redis Sentinel deployment started for one test file. */
export interface RedisSentinelHandle {
  /** The monitored master's name, for `new Redis({ sentinels, name })`. */
  name: string;
  sentinels: ServerAddress[];
  /** The server that was master at start; after a failover it may have become a replica. */
  master: RedisServer;
  /** The server that was replica at start; a failover promotes it. */
  replica: RedisServer;
  close(): Promise<void>;
}

/** One Memcached server of a {@link MemcachedHandle}. */
export interface MemcachedServer extends ServerAddress, FaultControls {
  /** `host:port`, the form memjs takes. */
  address: string;
}

/** Memcached servers started for one test file. */
export interface MemcachedHandle {
  servers: MemcachedServer[];
  close(): Promise<void>;
}

/** How a set of servers came to be. */
export type ProviderName = "env" | "docker" | "binaries";

/** The two ways of starting servers (the environment only points at existing ones). */
export type LauncherName = Exclude<ProviderName, "env">;

/** A shared standalone Redis (no fault controls: other test files use it at the same time). */
export interface SharedRedis extends ServerAddress {
  url: string;
}

/** A shared Redis Cluster of 3 masters. */
export interface SharedRedisCluster {
  nodes: ServerAddress[];
}

/** A shared Sentinel deployment. */
export interface SharedRedisSentinel {
  name: string;
  sentinels: ServerAddress[];
}

/** Shared Memcached servers (`address` is `host:port`). */
export interface SharedMemcached {
  servers: (ServerAddress & { address: string })[];
}

/** What failed when a service could not be provided; turned into a thrown error on access. */
export interface Unavailable {
  unavailable: string;
}

/** The servers shared by every integration test file of a run, as provided by globalSetup. */
export interface SharedServicesDescriptor {
  redis: SharedRedis | Unavailable;
  redisCluster: SharedRedisCluster | Unavailable;
  redisSentinel: SharedRedisSentinel | Unavailable;
  /** One Memcached server. */
  memcached: SharedMemcached | Unavailable;
  /** Three Memcached servers (or every server of `MEMCACHED_SERVERS` when it lists several). */
  memcachedMulti: SharedMemcached | Unavailable;
  /** Which provider served each service. */
  servedBy: Partial<Record<SharedServiceName, ProviderName>>;
  /** What starts dedicated servers in test files, or why nothing can. */
  launcher: LauncherName | Unavailable;
}

export type SharedServiceName = "redis" | "redisCluster" | "redisSentinel" | "memcached" | "memcachedMulti";

declare module "vitest" {
  export interface ProvidedContext {
    sharedSessionServices: SharedServicesDescriptor;
  }
}
