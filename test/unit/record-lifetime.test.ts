import { describe, expect, it } from "vitest";
import { decodeRecord, encodeRecord } from "../../src/core/record.js";

describe("record metadata: the optional lifetime field", () => {
  const base = { createdAt: 1, expiresAt: 2, writtenAt: 3 };

  it("is written only when set, and read back", () => {
    expect(encodeRecord(base, "{}")).toBe('{"v":1,"createdAt":1,"expiresAt":2,"writtenAt":3}\n{}');
    const withLifetime = encodeRecord({ ...base, owner: "u1", lifetime: 2_592_000 }, "{}");
    expect(withLifetime).toBe('{"v":1,"createdAt":1,"expiresAt":2,"writtenAt":3,"owner":"u1","lifetime":2592000}\n{}');
    expect(decodeRecord(withLifetime)?.meta).toEqual({ ...base, owner: "u1", lifetime: 2_592_000 });
  });

  it("a record written before the field existed reads without it", () => {
    expect(decodeRecord('{"v":1,"createdAt":1,"expiresAt":2,"writtenAt":3}\n{"a":1}')?.meta).toEqual(base);
  });

  it.each([["0", 0], ["a fraction", 1.5], ["a string", '"30"'], ["over 400 days", 400 * 86_400 + 1]])("a lifetime of %s makes the record corrupt", (_label, value) => {
    expect(decodeRecord(`{"v":1,"createdAt":1,"expiresAt":2,"writtenAt":3,"lifetime":${String(value)}}\n{}`)).toBeNull();
  });
});
