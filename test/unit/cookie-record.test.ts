import signature from "cookie-signature";
import { describe, expect, it } from "vitest";
import { cookieValues } from "../../src/core/cookie.js";
import { decodeRecord, encodeRecord, jsonSerializer } from "../../src/core/record.js";
import { verify } from "../../src/core/signing.js";
import { SECRET } from "../helpers/manager-support.js";

describe("cookie header parsing", () => {
  it("finds every value of the name, trimmed and unquoted, and nothing else", () => {
    expect(cookieValues('a=1; sid=x;sid= y ;xsid=z; sidx=w; sid="q"', "sid")).toEqual(["x", "y", "q"]);
  });
  it("returns nothing for absent, empty or malformed headers", () => {
    for (const header of [undefined, null, "", ";;;", "sid", "=sid", "other=1"]) expect(cookieValues(header, "sid")).toEqual([]);
  });
  it("keeps an empty value as a value", () => {
    expect(cookieValues("sid=", "sid")).toEqual([""]);
  });
});

describe("signature verification", () => {
  const valid = (id: string) => /^[0-9a-f-]{36}$/.test(id);
  const id = "6f1c2a44-9b1e-4c7d-8a2f-0e5d3c1b2a99";
  it("accepts what cookie-signature signs and reports which secret verified", () => {
    expect(verify(signature.sign(id, SECRET), ["x".repeat(32), SECRET], valid)).toEqual({ id, secretIndex: 1 });
  });
  it("refuses CR/LF, control bytes, non-UTF-8 and percent-encoded variants", () => {
    const good = signature.sign(id, SECRET);
    for (const bad of [`${good}\r\n`, `\u0000${good}`, good.replace(".", "%2E"), `${good}\u00ff`, encodeURIComponent(good)]) {
      if (bad === good) continue;
      expect(verify(bad, [SECRET], valid)).toBeNull();
    }
  });
});

describe("record format", () => {
  it("writes the documented version-1 layout", () => {
    const raw = encodeRecord({ createdAt: 1, expiresAt: 2, writtenAt: 3 }, '{"a":1}');
    expect(raw).toBe('{"v":1,"createdAt":1,"expiresAt":2,"writtenAt":3}\n{"a":1}');
    expect(decodeRecord(raw)).toEqual({ meta: { createdAt: 1, expiresAt: 2, writtenAt: 3 }, dataText: '{"a":1}' });
  });
  it("round-trips an owner", () => {
    const raw = encodeRecord({ createdAt: 1, expiresAt: 2, writtenAt: 3, owner: 'u"1' }, "{}");
    expect(decodeRecord(raw)?.meta.owner).toBe('u"1');
  });
  it("the JSON serializer drops pollution keys only when they appear", () => {
    expect(jsonSerializer.parse('{"a":{"b":[1,{"c":null}]}}')).toEqual({ a: { b: [1, { c: null }] } });
    const parsed = jsonSerializer.parse('{"__proto__":{"x":1},"a":{"constructor":{"prototype":{"y":1}},"k":1}}') as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(["a"]);
    expect(parsed.a).toEqual({ k: 1 });
  });
});
