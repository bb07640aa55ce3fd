import signature from "cookie-signature";
import { afterEach, describe, expect, it, vi } from "vitest";
import { VERIFIED_CACHE_SIZE, verify } from "../../src/core/signing.js";
import { SECRET } from "./support.js";

const valid = (id: string) => /^[0-9a-f-]{36}$/.test(id);
const idOf = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

describe("verified-cookie cache", () => {
  afterEach(() => vi.restoreAllMocks());

  it("verifies a repeat value without another HMAC", () => {
    const secrets = [SECRET];
    const value = signature.sign(idOf(1), SECRET);
    const unsign = vi.spyOn(signature, "unsign");
    expect(verify(value, secrets, valid)).toEqual({ id: idOf(1), secretIndex: 0 });
    expect(unsign).toHaveBeenCalledTimes(1);
    expect(verify(value, secrets, valid)).toEqual({ id: idOf(1), secretIndex: 0 });
    expect(unsign).toHaveBeenCalledTimes(1);
  });

  it("never lets a cached value vouch for an altered one", () => {
    const secrets = [SECRET];
    const value = signature.sign(idOf(2), SECRET);
    expect(verify(value, secrets, valid)).not.toBeNull();
    const last = value.at(-1) === "A" ? "B" : "A";
    expect(verify(value.slice(0, -1) + last, secrets, valid)).toBeNull();
    expect(verify(`${idOf(3)}${value.slice(value.indexOf("."))}`, secrets, valid)).toBeNull();
  });

  it("applies the caller's id check to a cached value", () => {
    const secrets = [SECRET];
    const value = signature.sign(idOf(4), SECRET);
    expect(verify(value, secrets, valid)).not.toBeNull();
    expect(verify(value, secrets, () => false)).toBeNull();
  });

  it("keeps one cache per secrets list: another manager's secrets do not accept the value", () => {
    const value = signature.sign(idOf(5), SECRET);
    expect(verify(value, [SECRET], valid)).not.toBeNull();
    expect(verify(value, ["another-secret-another-secret-123"], valid)).toBeNull();
  });

  it("holds at most VERIFIED_CACHE_SIZE values, dropping the oldest", () => {
    const secrets = [SECRET];
    const values = Array.from({ length: VERIFIED_CACHE_SIZE + 1 }, (_, n) => signature.sign(idOf(1000 + n), SECRET));
    for (const value of values) expect(verify(value, secrets, valid)).not.toBeNull();
    const unsign = vi.spyOn(signature, "unsign");
    expect(verify(values.at(-1)!, secrets, valid)).not.toBeNull();
    expect(unsign).toHaveBeenCalledTimes(0);
    expect(verify(values[0]!, secrets, valid)).not.toBeNull();
    expect(unsign).toHaveBeenCalledTimes(1);
  });
});
