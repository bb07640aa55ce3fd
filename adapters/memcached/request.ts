import memjs from "memjs";
import { bounded } from "../../src/core/bounded.js";
import { scrubError } from "../../src/core/errors.js";
import { CAS_TOKEN_OFFSET } from "./cas.js";
import { MemcachedStoreError } from "./errors.js";
import { Status, STATUS_TEXT } from "./protocol.js";

/** One binary-protocol response as memjs parses it. */
export interface MemjsResponse {
  /** `cas`: the item's 8-byte CAS token (all zero when the answer carries none). */
  readonly header: { readonly status: number; readonly opcode: number; readonly cas?: Buffer };
  readonly val: Buffer;
}

/**
 * The part of a `memjs` `Client` the store uses: `perform` sends one binary-protocol request to the
 * server that owns the key. A `memjs.Client` (one server or many) satisfies it.
 */
export interface MemjsClientLike {
  readonly seq: number;
  incrSeq(): void;
  perform(key: string, request: Buffer, seq: number, callback?: (err: Error | null, response?: MemjsResponse | null) => void, retries?: number): void;
  /** The server a key maps to (used in error messages only). */
  server(key: string): { readonly host: string; readonly port: number } | null | undefined;
}

/** One request: what it is called in error messages, and what goes on the wire. */
export interface MemcachedRequest {
  /** The store operation, as error messages name it (`get`, `add`, `get (compare-and-set)`…). */
  readonly operation: string;
  readonly opcode: number;
  readonly key: string;
  readonly extras: Buffer;
  readonly value?: string;
  /** A nonzero CAS token: the server applies the request only if the item still has it. */
  readonly casToken?: Buffer;
}

/** `host:port` of the server `key` maps to, or `undefined` when the client cannot say. */
export function serverOf(client: MemjsClientLike, key: string): string | undefined {
  try {
    const server = client.server(key);
    return server ? `${server.host}:${server.port}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Send one request to the key's server through memjs (which routes by key, applies the client's
 * retries and failover settings, and matches the answer by sequence number). Rejects with a
 * {@link MemcachedStoreError} within `timeout` seconds, whatever memjs does.
 */
export function sendRequest(client: MemjsClientLike, timeout: number, request: MemcachedRequest): Promise<MemjsResponse> {
  const { operation, key } = request;
  const server = () => serverOf(client, key) ?? "the server";
  return bounded(
    () =>
      new Promise<MemjsResponse>((resolve, reject) => {
        try {
          client.incrSeq();
          const seq = client.seq;
          const buffer = memjs.Utils.makeRequestBuffer(request.opcode, key, request.extras, request.value ?? "", seq);
          request.casToken?.copy(buffer, CAS_TOKEN_OFFSET);
          client.perform(key, buffer, seq, (err, response) => {
            if (err === null && response !== undefined && response !== null) resolve(response);
            else reject(err);
          });
        } catch (err) {
          reject(err ?? new Error("memjs threw"));
        }
      }),
    Math.ceil(timeout * 1000),
    () => new MemcachedStoreError("ERR_MEMCACHED_TIMEOUT", `${operation} got no answer from ${server()} within ${timeout}s`, { server: serverOf(client, key) }),
    (err) => {
      if (err instanceof MemcachedStoreError) return err;
      // memjs's errors are plain; scrub them anyway so nothing a driver attaches rides along.
      // The driver's words are the cause's, said once; no cause means memjs answered with nothing.
      const cause = err === null || err === undefined ? undefined : scrubError(err);
      const message = cause === undefined ? `${operation} failed on ${server()}: no response` : `${operation} failed on ${server()}`;
      return new MemcachedStoreError("ERR_MEMCACHED_CONNECTION", message, { server: serverOf(client, key), cause });
    },
  );
}

/** The error for a response status the operation does not expect; `record` is what a write sent, for the size hint. */
export function statusError(client: MemjsClientLike, operation: string, key: string, status: number, record?: string): MemcachedStoreError {
  const text = STATUS_TEXT[status] ?? `status 0x${status.toString(16)}`;
  let hint = "";
  if (status === Status.TOO_LARGE && record !== undefined) {
    hint = ` (record of ${Buffer.byteLength(record)} bytes is over the server's item size limit, memcached -I, 1 MB by default)`;
  } else if (status === Status.UNKNOWN_COMMAND && operation === "get-and-touch") {
    hint = " (the server has no get-and-touch: use memcached >= 1.4.8, or getAndTouch: false)";
  }
  const server = serverOf(client, key);
  return new MemcachedStoreError("ERR_MEMCACHED_STATUS", `${operation} failed on ${server ?? "the server"}: ${text}${hint}`, { server, status });
}
