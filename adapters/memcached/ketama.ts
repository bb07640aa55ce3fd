import { createHash } from "node:crypto";

/**
 * Ketama consistent hashing, placed as libmemcached places keys in its ketama-compatible mode
 * (`MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`, MD5), which PHP's memcached extension
 * (`Memcached::OPT_LIBKETAMA_COMPATIBLE`) and pylibmc (`"ketama_weighted": True`) use too, so that fleets
 * in several languages agree on where a key lives.
 *
 * - Each server gets `floor(weight / totalWeight * 40 * servers) * 4` points on a 32-bit circle
 *   (160 for equal weights): MD5 of `"<host>-<i>"` (`"<host>:<port>-<i>"` when the port is not
 *   11211) for i = 0, 1, …, each digest giving four points (its four little-endian 32-bit words).
 * - A key hashes to the first four bytes of its MD5 (little-endian) and belongs to the server of
 *   the first point at or after that hash, wrapping around to the first point.
 *
 * Adding a server to n moves about 1/(n+1) of the keys (to the new server), where `hash % n` moves
 * about n/(n+1) of them.
 */

/** One server of the continuum. */
export interface KetamaServer {
  /** Host as configured (a name or an IP address: it is hashed as written). */
  readonly host: string;
  readonly port: number;
  /** Relative share of the keys. @default 1 */
  readonly weight?: number;
}

const DEFAULT_PORT = 11211;
/** Points per server with equal weights (libmemcached's MEMCACHED_POINTS_PER_SERVER_KETAMA). */
const POINTS_PER_SERVER = 160;
/** Points one MD5 digest gives. */
const POINTS_PER_HASH = 4;

/** The ketama hash of a key: the first four bytes of its MD5, little-endian. */
export function ketamaHash(key: string): number {
  return createHash("md5").update(key).digest().readUInt32LE(0);
}

/** The points of each server, sorted: which server owns each stretch of the circle. */
export class KetamaContinuum {
  /** Point values, ascending. */
  readonly #points: Uint32Array;
  /** Server index (position in the list given) of each point. */
  readonly #owners: Uint16Array;

  constructor(servers: readonly KetamaServer[]) {
    if (servers.length === 0) throw new RangeError("ketama: at least one server is needed");
    if (servers.length > 0xffff) throw new RangeError("ketama: too many servers");
    const weights = servers.map((s) => s.weight ?? 1);
    for (const w of weights) if (!Number.isInteger(w) || w < 1) throw new RangeError(`ketama: a weight must be a whole number >= 1, got ${String(w)}`);
    const total = weights.reduce((a, b) => a + b, 0);
    const points: { value: number; owner: number }[] = [];
    servers.forEach((server, owner) => {
      for (let i = 0, n = pointsFor(weights[owner]!, total, servers.length) / POINTS_PER_HASH; i < n; i++) {
        const name = server.port === DEFAULT_PORT ? `${server.host}-${i}` : `${server.host}:${server.port}-${i}`;
        const digest = createHash("md5").update(name).digest();
        for (let word = 0; word < POINTS_PER_HASH; word++) points.push({ value: digest.readUInt32LE(word * 4), owner });
      }
    });
    // Equal values (rare) go to the lower server index first, as libmemcached sorts them.
    points.sort((a, b) => a.value - b.value || a.owner - b.owner);
    this.#points = Uint32Array.from(points, (p) => p.value);
    this.#owners = Uint16Array.from(points, (p) => p.owner);
  }

  /** Number of points on the circle. */
  get size(): number {
    return this.#points.length;
  }

  /** Index (in the list given) of the server that owns `hash`. */
  serverForHash(hash: number): number {
    const points = this.#points;
    let low = 0;
    let high = points.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (points[middle]! < hash) low = middle + 1;
      else high = middle;
    }
    return this.#owners[low === points.length ? 0 : low]!;
  }

  /** Index (in the list given) of the server that owns `key`. */
  serverFor(key: string): number {
    return this.serverForHash(ketamaHash(key));
  }
}

/**
 * Points of one server, computed in single precision as libmemcached does, so that weights whose
 * share is not exact round the same way there and here.
 */
function pointsFor(weight: number, total: number, servers: number): number {
  const f = Math.fround;
  const share = f(f(weight) / f(total));
  const hashes = f(f(f(f(share * POINTS_PER_SERVER) / POINTS_PER_HASH) * f(servers)) + f(1e-10));
  return Math.floor(hashes) * POINTS_PER_HASH;
}
