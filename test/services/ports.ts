import net from "node:net";

/**
 * Ports are drawn from 10000–22767: below the kernel's ephemeral range (Linux 32768+, macOS
 * 49152+), so that an outgoing client connection never grabs the port of a stopped server
 * before it starts again on the same address, and so that `port + 10000` (the Redis Cluster
 * bus port) stays below that range too.
 */
const LOW = 10_000;
const HIGH = 22_767;
export const CLUSTER_BUS_OFFSET = 10_000;

const handedOut = new Set<number>();

/** Resolves whether nothing listens on 127.0.0.1:`port`. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/**
 * A port that is free now (the server started on it may still lose a race with another process:
 * callers retry on "address already in use"). With `clusterBus`, `port + 10000` is free too.
 */
export async function pickPort(options: { clusterBus?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (handedOut.has(port) || (options.clusterBus === true && handedOut.has(port + CLUSTER_BUS_OFFSET))) continue;
    if (!(await isPortFree(port))) continue;
    if (options.clusterBus === true && !(await isPortFree(port + CLUSTER_BUS_OFFSET))) continue;
    handedOut.add(port);
    if (options.clusterBus === true) handedOut.add(port + CLUSTER_BUS_OFFSET);
    return port;
  }
  throw new Error(`test-services: no free port found between ${LOW} and ${HIGH}`);
}
