/** RedisStore's version tags (adapters/redis/version.ts): their shape, and which values carry one. */
import { describe, expect, it } from "vitest";
import { TAG_LENGTH } from "../../adapters/redis/lua.js";
import { isTag, isTaggable, newTag, tagOf, untagged } from "../../adapters/redis/version.js";

describe("RedisStore version tags", () => {
  it("are a ~ and 11 base64url characters, different on every write", () => {
    const tags = new Set<string>();
    for (let i = 0; i < 5_000; i++) {
      const tag = newTag();
      expect(tag).toMatch(/^~[A-Za-z0-9_-]{11}$/);
      expect(tag).toHaveLength(TAG_LENGTH);
      tags.add(tag);
    }
    expect(tags.size).toBe(5_000);
  });

  it("are put only in front of records in shared-session's own format", () => {
    expect(isTaggable('{"v":1,"createdAt":1,"expiresAt":2,"writtenAt":1}\n{}')).toBe(true);
    expect(isTaggable('{"cookie":{"path":"/"},"user":"dave"}')).toBe(false); // express-session's layout, for connect-redis
    expect(isTaggable("anything else")).toBe(false);
  });

  it("are recognised and stripped on read; a value without one is returned as it is", () => {
    const record = '{"v":1,"createdAt":1,"expiresAt":2,"writtenAt":1}\n{"a":1}';
    const tag = newTag();
    expect(tagOf(tag + record)).toBe(tag);
    expect(untagged(tag + record)).toBe(record);
    expect(tagOf(record)).toBeUndefined();
    expect(untagged(record)).toBe(record);
    // Looks like a tag at first glance but is not one: left alone.
    expect(tagOf("~short")).toBeUndefined();
    expect(tagOf("~abc def ghij{}")).toBeUndefined();
  });

  it("accept as a version only what could be a tag", () => {
    expect(isTag(newTag())).toBe(true);
    for (const bad of ["not a version", "", "~abc", "0123456789abcdef", 42, undefined, `${newTag()}x`]) expect(isTag(bad)).toBe(false);
  });
});
