/**
 * A TCP proxy that injects latency on demand: while a group of proxies is holding, every byte a client
 * sends towards the server is kept back, and released in order when the test says so. Replies
 * (server → client) always pass. No timers: a test engages the hold at an exact point of the protocol
 * (from a diagnostics_channel event) and releases it after what it wants to run in between.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export interface Target {
  readonly host: string;
  readonly port: number;
}

/** Proxies that hold and release together (one per node of a Cluster, as one app process sees them). */
export class GateGroup {
  #holding = false;
  readonly #held: Array<() => void> = [];
  #waiters: Array<() => void> = [];
  readonly #servers: Server[] = [];
  readonly #sockets = new Set<Socket>();

  /** Start a proxy to `target` on a free port of 127.0.0.1; resolves to that port. */
  async proxy(target: Target): Promise<number> {
    const server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      this.#sockets.add(client).add(upstream);
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
      upstream.on("data", (chunk: Buffer) => client.write(chunk));
      client.on("data", (chunk: Buffer) => {
        if (!this.#holding) {
          upstream.write(chunk);
          return;
        }
        this.#held.push(() => upstream.write(chunk));
        const waiters = this.#waiters;
        this.#waiters = [];
        for (const w of waiters) w();
      });
    });
    this.#servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as { port: number }).port;
  }

  /** From now on, keep back what clients send. */
  hold(): void {
    this.#holding = true;
  }

  /** Bytes are being kept back. */
  get holding(): boolean {
    return this.#holding;
  }

  /** Resolves once at least one chunk is being kept back. */
  whenHeld(): Promise<void> {
    if (this.#held.length > 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Send everything kept back, in order, and stop holding. */
  release(): void {
    this.#holding = false;
    for (const send of this.#held.splice(0)) send();
  }

  async close(): Promise<void> {
    this.release();
    for (const s of this.#sockets) s.destroy();
    await Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
