import memjs from "memjs";

/** Binary-protocol NOOP: the server answers at once, touching no item. */
const NOOP = 0x0a;

/** The part of a memjs `Server` the readiness check uses. */
interface ServerLike {
  readonly host: string;
  readonly port: number | string;
  onResponse(seq: number, fn: (response: { header: { status: number } }) => void): void;
  onError(seq: number, fn: (error: Error) => void): void;
  write(request: Buffer): void;
}

/** A memjs `Client` as far as readiness goes: its servers, and the request counter it shares with the store. */
export interface ReadyClientLike {
  readonly seq: number;
  incrSeq(): void;
  readonly servers?: readonly ServerLike[];
}

/**
 * Resolve once every server of `client` answers a NOOP within `timeoutMs` (memjs connects on the
 * first write); reject naming the servers that did not and why (refused, no answer).
 */
export async function whenMemcachedReady(client: ReadyClientLike, timeoutMs: number): Promise<void> {
  const servers = client.servers;
  if (!Array.isArray(servers) || servers.length === 0) throw new Error("the client lists no servers (expected a memjs Client)");
  const failures: string[] = [];
  await Promise.all(
    servers.map(
      (server: ServerLike) =>
        new Promise<void>((resolve) => {
          const name = `${server.host}:${server.port}`;
          let settled = false;
          const done = (failure?: string) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            if (failure !== undefined) failures.push(`${name}: ${failure}`);
            resolve();
          };
          const timer = setTimeout(() => done(`no answer within ${timeoutMs / 1000}s`), timeoutMs);
          try {
            client.incrSeq();
            const seq = client.seq;
            server.onResponse(seq, (response) => done(response.header.status === 0 ? undefined : `answered status ${response.header.status}`));
            server.onError(seq, (err) => done(err.message || String(err)));
            server.write(memjs.Utils.makeRequestBuffer(NOOP, "", "", "", seq));
          } catch (err) {
            done(err instanceof Error ? err.message : String(err));
          }
        }),
    ),
  );
  if (failures.length > 0) throw new Error(`${failures.length} of ${servers.length} memcached server(s) not ready: ${failures.join("; ")}`);
}
