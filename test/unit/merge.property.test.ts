import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createSessionManager, decodeRecord } from "../../src/index.js";
import { CountingStore, SECRET, cookiePair } from "../helpers/manager-support.js";

type Data = Record<string, unknown>;
type Op = { key: string; value: unknown } | { key: string; delete: true };

const keys = fc.constantFrom("a", "b", "c", "cart", "prefs", "ü-ñ", "emoji🎉", "n");
// Every value JSON can carry, including the awkward ones: nested and empty containers, null,
// unicode, numbers at the limits.
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom([], {}, [[]], null, "", Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1e308, 5e-324, "\u2028\u0000\ud83d\ude00"),
);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ key: keys, value }),
  fc.record({ key: keys, delete: fc.constant(true as const) }),
);
const initial = fc.dictionary(keys, value, { maxKeys: 5 });

const text = (v: unknown) => JSON.stringify(v);
/** What survives a round trip through the store: JSON, with pollution keys dropped at every depth (documented). */
const UNSAFE = new Set(["__proto__", "constructor", "prototype"]);
const normalize = <T>(v: T): T => JSON.parse(JSON.stringify(v), (key, value) => (UNSAFE.has(key) ? undefined : value));

/** Reference model: each request's changes (keys whose value differs from what it loaded) applied in commit order. */
function model(start: Data, requests: Op[][], order: number[]): Data {
  const result: Data = normalize(start);
  for (const index of order) {
    const before: Data = normalize(start);
    const after: Data = normalize(start);
    for (const o of requests[index]!) {
      if ("delete" in o) delete after[o.key];
      else after[o.key] = o.value;
    }
    const normalized: Data = normalize(after);
    for (const key of new Set([...Object.keys(before), ...Object.keys(normalized)])) {
      const a = key in before ? text(before[key]) : undefined;
      const b = key in normalized ? text(normalized[key]) : undefined;
      if (a === b) continue;
      if (b === undefined) delete result[key];
      else result[key] = normalized[key];
    }
  }
  return result;
}

describe("per-key merge of concurrent writes", () => {
  it("matches the reference model for any data, any changes and any commit order", async () => {
    await fc.assert(
      fc.asyncProperty(
        initial,
        fc.array(fc.array(op, { maxLength: 4 }), { minLength: 2, maxLength: 5 }).chain((requests) =>
          fc.tuple(fc.constant(requests), fc.shuffledSubarray(requests.map((_, i) => i), { minLength: requests.length, maxLength: requests.length })),
        ),
        async (start, [requests, order]) => {
          const store = new CountingStore();
          const manager = createSessionManager<Data>({ store, secret: SECRET });
          const first = await manager.load(undefined, { secure: false });
          Object.assign(first, start);
          await first.save();
          const { setCookie } = await manager.commit(first);
          const cookie = cookiePair(setCookie ?? `sid=${manager.signId(first.id)}`);
          const sessions = await Promise.all(requests.map(() => manager.load(cookie, { secure: false })));
          requests.forEach((ops, i) => {
            const s = sessions[i] as unknown as Data;
            for (const o of ops) {
              if ("delete" in o) delete s[o.key];
              else s[o.key] = o.value;
            }
          });
          for (const index of order) await manager.commit(sessions[index]!);
          const stored = decodeRecord((await store.inner.get(manager.storeKeyOf(first.id)))!)!;
          expect(JSON.parse(stored.dataText)).toEqual(normalize(model(start, requests, order)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("fifty overlapping writers of distinct keys all land", async () => {
    const store = new CountingStore();
    const manager = createSessionManager<Data>({ store, secret: SECRET });
    const first = await manager.load(undefined, { secure: false });
    first.seed = true;
    const cookie = cookiePair((await manager.commit(first)).setCookie);
    const sessions = await Promise.all(Array.from({ length: 50 }, () => manager.load(cookie, { secure: false })));
    sessions.forEach((s, i) => ((s as unknown as Data)[`k${i}`] = i));
    await Promise.all(sessions.map((s) => manager.commit(s)));
    const data = JSON.parse(decodeRecord((await store.inner.get(manager.storeKeyOf(first.id)))!)!.dataText);
    expect(Object.keys(data)).toHaveLength(51);
    for (let i = 0; i < 50; i++) expect(data[`k${i}`]).toBe(i);
  });
});
