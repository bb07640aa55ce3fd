/**
 * Ketama placement against libmemcached's published test vectors (tests/ketama_test_cases.h of
 * libmemcached: 8 weighted servers, 99 keys, each with its hash, the continuum point it lands on
 * and its server), so that our placement agrees with libmemcached, PHP memcached and pylibmc.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { KetamaContinuum, ketamaHash } from "../../adapters/memcached/ketama.js";

/** [key, key hash, continuum point, server host], as libmemcached lists them. */
const VECTORS = JSON.parse(readFileSync(new URL("./fixtures/ketama-libmemcached.json", import.meta.url), "utf8")) as [string, number, number, string][];

/** libmemcached's test pool: "10.0.1.1:11211 600,10.0.1.2:11211 300,…". */
const POOL = [
  { host: "10.0.1.1", port: 11211, weight: 600 },
  { host: "10.0.1.2", port: 11211, weight: 300 },
  { host: "10.0.1.3", port: 11211, weight: 200 },
  { host: "10.0.1.4", port: 11211, weight: 350 },
  { host: "10.0.1.5", port: 11211, weight: 1000 },
  { host: "10.0.1.6", port: 11211, weight: 800 },
  { host: "10.0.1.7", port: 11211, weight: 950 },
  { host: "10.0.1.8", port: 11211, weight: 100 },
];

describe("ketama placement (libmemcached-compatible)", () => {
  it("has the 99 published vectors", () => {
    expect(VECTORS).toHaveLength(99);
  });

  it("hashes keys as libmemcached does (MD5, first four bytes little-endian)", () => {
    for (const [key, hash] of VECTORS) expect(ketamaHash(key), key).toBe(hash);
  });

  it("places every published key on the server libmemcached places it on", () => {
    const continuum = new KetamaContinuum(POOL);
    for (const [key, , , host] of VECTORS) expect(POOL[continuum.serverFor(key)]!.host, key).toBe(host);
  });

  it("wraps around: a hash after the last point belongs to the first point's server", () => {
    const continuum = new KetamaContinuum(POOL);
    expect(ketamaHash("VDEAAAAA")).toBe(0xfffcd1b5);
    expect(continuum.serverFor("VDEAAAAA")).toBe(continuum.serverForHash(0));
  });

  it("gives 160 points per server with equal weights, and points by weight otherwise", () => {
    expect(new KetamaContinuum([{ host: "a", port: 11211 }]).size).toBe(160);
    expect(new KetamaContinuum([1, 2, 3].map((i) => ({ host: `10.0.0.${i}`, port: 11211 }))).size).toBe(480);
    // libmemcached's rounding: floor(share * 40 * servers) digests of four points each.
    const weighted = new KetamaContinuum(POOL);
    const total = POOL.reduce((n, s) => n + s.weight, 0);
    const expected = POOL.reduce((n, s) => n + Math.floor(Math.fround(Math.fround(s.weight / total) * 40 * 8) + 1e-10) * 4, 0);
    expect(weighted.size).toBe(expected);
  });

  it("names a server with its port unless it is 11211", () => {
    // Same host, different ports: distinct points, so each gets its share of keys.
    const continuum = new KetamaContinuum([
      { host: "127.0.0.1", port: 11211 },
      { host: "127.0.0.1", port: 11212 },
    ]);
    const counts = [0, 0];
    for (let i = 0; i < 2000; i++) counts[continuum.serverFor(`sess:${i}`)]! += 1;
    expect(Math.min(...counts)).toBeGreaterThan(700);
  });

  it("moves about a quarter of the keys when a fourth server joins three, where hash % n moves three quarters", () => {
    const three = new KetamaContinuum([1, 2, 3].map((i) => ({ host: `10.0.0.${i}`, port: 11211 })));
    const four = new KetamaContinuum([1, 2, 3, 4].map((i) => ({ host: `10.0.0.${i}`, port: 11211 })));
    let kept = 0;
    for (let i = 0; i < 10_000; i++) if (three.serverFor(`sess:${i}`) === four.serverFor(`sess:${i}`)) kept += 1;
    expect(kept / 10_000).toBeGreaterThan(0.65);
    expect(kept / 10_000).toBeLessThan(0.85);
  });

  it("refuses an empty pool and weights that are not whole numbers >= 1", () => {
    expect(() => new KetamaContinuum([])).toThrow(RangeError);
    expect(() => new KetamaContinuum([{ host: "a", port: 1, weight: 0 }])).toThrow(/weight/);
    expect(() => new KetamaContinuum([{ host: "a", port: 1, weight: 1.5 }])).toThrow(/weight/);
  });
});
