import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyChanges, changesBetween } from "../../src/core/merge.js";
import { jsonSerializer } from "../../src/core/record.js";

type Data = Record<string, unknown>;

const keys = fc.constantFrom("a", "b", "c", "cart", "ü", "id", "cookie");
const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom([], {}, null, ""));
// Data as the store gives it back: JSON, so no `undefined` values.
const data = fc.dictionary(keys, value, { maxKeys: 5 }).map((d) => JSON.parse(JSON.stringify(d)) as Data);
const SKIP: ReadonlySet<string> = new Set(["id", "cookie"]);
const text = (d: Data) => jsonSerializer.stringify(d);
const withoutSkipped = (d: Data) => Object.fromEntries(Object.entries(d).filter(([k]) => !SKIP.has(k)));

describe("merge.ts: re-applying one request's changes onto concurrent data", () => {
  it("applied onto what the request loaded, its changes give what it holds (skipped keys aside)", () => {
    fc.assert(
      fc.property(data, data, (before, after) => {
        const changes = changesBetween(jsonSerializer, before, after, SKIP);
        const merged = applyChanges(before, changes);
        expect(text(withoutSkipped(merged))).toBe(text(withoutSkipped(mergeOrder(before, after))));
        for (const key of Object.keys(after)) if (!SKIP.has(key)) expect(merged[key]).toEqual(after[key]);
        for (const key of Object.keys(before)) if (!SKIP.has(key) && !(key in after)) expect(key in merged).toBe(false);
      }),
    );
  });

  it("onto another request's data: the keys it changed are its own, every other key is the other request's", () => {
    fc.assert(
      fc.property(data, data, data, (before, after, current) => {
        const changes = changesBetween(jsonSerializer, before, after, SKIP);
        const snapshot = text(current);
        const merged = applyChanges(current, changes);
        expect(text(current)).toBe(snapshot); // pure: the input is left as it was
        for (const key of new Set([...Object.keys(current), ...Object.keys(after), ...Object.keys(before)])) {
          if (changes.has(key)) {
            if (key in after) expect(merged[key]).toEqual(after[key]);
            else expect(key in merged).toBe(false);
          } else {
            expect(key in merged).toBe(key in current);
            if (key in current) expect(merged[key]).toEqual(current[key]);
          }
        }
      }),
    );
  });

  it("no change, nothing to apply; skipped keys never count as changes", () => {
    fc.assert(
      fc.property(data, (d) => {
        expect(changesBetween(jsonSerializer, d, JSON.parse(JSON.stringify(d)) as Data, SKIP).size).toBe(0);
        expect(changesBetween(jsonSerializer, d, { ...d, id: "x", cookie: { a: 1 } }, SKIP).size).toBe(0);
      }),
    );
  });

  it("a key set to undefined is a deletion", () => {
    const changes = changesBetween(jsonSerializer, { a: 1, b: 2 }, { a: undefined, b: 2 }, SKIP);
    expect([...changes]).toEqual([["a", undefined]]);
    expect(applyChanges({ a: 5, b: 3, c: 4 }, changes)).toEqual({ b: 3, c: 4 });
  });
});

/** `before`'s keys in their order, then `after`'s values: what applying onto `before` must give. */
function mergeOrder(before: Data, after: Data): Data {
  const out: Data = {};
  for (const key of Object.keys(before)) if (key in after) out[key] = after[key];
  for (const key of Object.keys(after)) if (!(key in out)) out[key] = after[key];
  return out;
}
