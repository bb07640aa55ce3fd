/**
 * Property-based tests of everything a client or a corrupt store can feed the core: the Cookie
 * header (any text at all), the signature, and the stored record. The oracle is the store itself:
 * a cookie that is not validly signed must never cause a store call.
 */
import signature from "cookie-signature";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cookieValues } from "../../src/core/cookie.js";
import { decodeRecord, encodeRecord, jsonSerializer, parseData, type RecordMeta } from "../../src/core/record.js";
import { sign, verify } from "../../src/core/signing.js";
import { createSessionManager, type SessionLogEntry } from "../../src/index.js";
import { CountingStore, OLD_SECRET, SECRET, storeKey } from "../helpers/manager-support.js";

type Data = Record<string, unknown>;

const RUNS = { numRuns: 300 };
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const OTHER_SECRET = "a-third-secret-nobody-configured-at-all!";

/** Any UTF-16 code unit, lone surrogates and control bytes included (not only valid Unicode). */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n));
/** Bytes as a lenient HTTP parser would hand them over as latin1 (Node decodes header bytes that way). */
const latin1 = fc.integer({ min: 0, max: 0xff }).map((n) => String.fromCharCode(n));
const anyText = fc.oneof(
  fc.string({ unit: codeUnit, maxLength: 80 }),
  fc.string({ unit: latin1, maxLength: 80 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: fc.constantFrom("=", ";", " ", '"', "\r", "\n", "\t", "\0", ".", "%", "s", "i", "d", ","), maxLength: 30 }),
);

const extra = anyText.filter((t) => t.trim().length > 0 && !t.includes(";"));

/** Mutations of a validly signed value that must all fail verification. */
function mutations(id: string): fc.Arbitrary<string> {
  const good = signature.sign(id, SECRET);
  const sig = good.slice(good.lastIndexOf(".") + 1);
  // Fixed variants, minus any that happen to equal the good value (a plain filter on a constant could spin forever).
  const fixed = [
    signature.sign(id, OTHER_SECRET), // signed by a secret not (or no longer) configured
    id, // unsigned
    `${id}.`, // empty signature
    `${id}.${sig.slice(0, 42)}`, // one character short
    `${id}.${sig}A`, // one character long
    `${id}.${sig.replace(/[A-Za-z0-9+/]/g, "!")}`, // not base64
    `${id}.${Buffer.from(sig, "base64").toString("base64url")}`, // base64url alphabet
    encodeURIComponent(good), // percent-encoded
    `${id}%2E${sig}`, // the dot percent-encoded
    good.toUpperCase(),
  ].filter((v) => v !== good);
  return fc.oneof(
    fc.constantFrom(...fixed),
    // Extra bytes appended or prepended (not only spaces, which the header syntax trims, nor ";", which ends the value).
    extra.map((bytes) => good + bytes),
    extra.map((bytes) => bytes + good),
    fc.nat({ max: good.length - 1 }).chain((at) =>
      codeUnit.filter((c) => c !== good[at]).map((c) => good.slice(0, at) + c + good.slice(at + 1)), // one unit changed
    ),
  );
}

/** A well-formed v4 id, signed with the secret that was rotated out (only OLD_SECRET/SECRET are configured here). */
const validId = fc.uuid({ version: 4 });

/** One `;`-separated part of a Cookie header. */
type Part = { text: string; signed?: string };
function parts(signedIds: readonly string[]): fc.Arbitrary<Part> {
  return fc.oneof(
    { arbitrary: anyText.map((text) => ({ text })), weight: 3 },
    { arbitrary: anyText.map((value) => ({ text: `sid=${value}` })), weight: 3 },
    { arbitrary: validId.chain(mutations).map((value) => ({ text: `sid=${value}` })), weight: 3 },
    { arbitrary: validId.map((id) => ({ text: `sid=${signature.sign(id, OTHER_SECRET)}` })), weight: 1 },
    // A signature that verifies on an id the validator refuses: still never reaches the store.
    { arbitrary: anyText.filter((id) => !UUID_V4.test(id)).map((id) => ({ text: `sid=${signature.sign(id, SECRET)}` })), weight: 1 },
    { arbitrary: fc.constantFrom(...signedIds).map((id) => ({ text: ` sid=${signature.sign(id, SECRET)} `, signed: id })), weight: 1 },
  );
}

describe("arbitrary Cookie headers", () => {
  it("never throw out of load, never reach the store unless validly signed, and never adopt an unknown id", async () => {
    const known = "6f1c2a44-9b1e-4c7d-8a2f-0e5d3c1b2a99";
    const unknown = "0b7d1f3e-2c4a-4e6b-9d8f-1a3c5e7b9d2f";
    await fc.assert(
      fc.asyncProperty(fc.array(parts([known, unknown]), { maxLength: 12 }), fc.constantFrom("; ", ";", ";;"), async (list, separator) => {
        const store = new CountingStore();
        const logs: SessionLogEntry[] = [];
        const manager = createSessionManager<Data>({ store, secret: [SECRET, OLD_SECRET], logger: (e) => logs.push(e) });
        // Put a real session under `known` (signed values for it carry its real signature); its
        // deadline is further than idleTimeout, so loading it costs exactly one read.
        const now = Date.now();
        await store.inner.create(manager.storeKeyOf(known), encodeRecord({ createdAt: now, expiresAt: now + 7 * 86_400_000, writtenAt: now }, '{"n":1}'), 60);
        const header = list.map((p) => p.text).join(separator);
        const session = await manager.load(header, { secure: false });
        // Only the first MAX_COOKIE_VALUES (4) values named sid are looked at (#16 item 7). Among them,
        // the validly signed ones are looked up in order, once per id, until one is live: a dead
        // one sent first does not hide the live one behind it (#16 item 8).
        const tried: string[] = [];
        for (const value of cookieValues(header, "sid", 4)) {
          const id = value === signature.sign(known, SECRET) ? known : value === signature.sign(unknown, SECRET) ? unknown : null;
          if (id === null || tried.includes(id)) continue;
          tried.push(id);
          if (id === known) break;
        }
        expect(store.calls).toEqual(tried.map((id) => ({ op: "get", id: manager.storeKeyOf(id) })));
        expect(session.isNew).toBe(!tried.includes(known));
        if (session.isNew) {
          expect(session.id).not.toBe(known);
          expect(session.id).not.toBe(unknown);
          expect(session.id).toMatch(UUID_V4);
        } else {
          expect(session.id).toBe(known);
          expect((session as Data).n).toBe(1);
        }
        // Logs carry hashes, never the ids the client sent.
        const logged = JSON.stringify(logs.map((l) => [l.event, l.message, l.session]));
        expect(logged).not.toContain(known);
        expect(logged).not.toContain(unknown);
      }),
      RUNS,
    );
  });

  it("huge values and thousands of duplicates cost no store call and do not throw", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ unit: codeUnit, minLength: 10_000, maxLength: 200_000 }),
          fc.tuple(validId.chain(mutations), fc.integer({ min: 100, max: 3000 })).map(([value, n]) => Array(n).fill(`sid=${value}`).join("; ")),
          fc.integer({ min: 10_000, max: 1_000_000 }).map((n) => `sid=${"A".repeat(n)}.${"B".repeat(43)}`),
        ),
        async (header) => {
          const store = new CountingStore();
          const manager = createSessionManager<Data>({ store, secret: [SECRET, OLD_SECRET] });
          const session = await manager.load(header, { secure: true });
          expect(store.count()).toBe(0);
          expect(session.isNew).toBe(true);
          // Writing to it makes a fresh id, never anything the header held.
          session.n = 1;
          const { setCookie } = await manager.commit(session);
          expect(setCookie).toMatch(/^sid=[0-9a-f-]{36}\.[A-Za-z0-9+/]{43}; /);
          expect(header).not.toContain(session.id);
        },
      ),
      { numRuns: 25 },
    );
  });

  it("cookieValues never throws and every value it returns comes from the header", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(anyText, anyText.map((v) => `sid=${v}`)), { maxLength: 10 }), (list) => {
        const header = list.join(";");
        const values = cookieValues(header, "sid");
        for (const value of values) expect(header).toContain(value);
        expect(values.length).toBeLessThanOrEqual(list.length);
      }),
      RUNS,
    );
  });
});

describe("signing", () => {
  // Ids a custom validator may accept: cookie-safe characters, glob and colon included, dots too.
  const idChars = fc.constantFrom(..."abcXYZ019-_*?[]:!#$%&'()+/<=>@^`{|}~.".split(""));
  const customId = fc.string({ unit: idChars, minLength: 1, maxLength: 200 });

  it("verify(sign(id)) gives back the id for any id the validator accepts", () => {
    fc.assert(
      fc.property(customId, (id) => {
        expect(verify(sign(id, [SECRET]), [SECRET], () => true)).toEqual({ id, secretIndex: 0 });
      }),
      RUNS,
    );
  });

  it("a cookie signed with an older configured secret verifies with its index; an unconfigured one never does", () => {
    fc.assert(
      fc.property(customId, (id) => {
        expect(verify(sign(id, [OLD_SECRET]), [SECRET, OLD_SECRET], () => true)).toEqual({ id, secretIndex: 1 });
        expect(verify(sign(id, [OTHER_SECRET]), [SECRET, OLD_SECRET], () => true)).toBeNull();
        expect(verify(sign(id, [SECRET]), [SECRET], () => false)).toBeNull();
      }),
      RUNS,
    );
  });

  it("through the manager: a known session signed with either secret loads, and an old signature is re-signed", async () => {
    await fc.assert(
      fc.asyncProperty(validId, fc.boolean(), async (id, old) => {
        const store = new CountingStore();
        const manager = createSessionManager<Data>({ store, secret: [SECRET, OLD_SECRET] });
        const now = Date.now();
        await store.inner.create(manager.storeKeyOf(id), encodeRecord({ createdAt: now, expiresAt: now + 60_000, writtenAt: now }, '{"a":1}'), 60);
        const session = await manager.load(`sid=${signature.sign(id, old ? OLD_SECRET : SECRET)}`, { secure: false });
        expect(session.isNew).toBe(false);
        expect(session.id).toBe(id);
        const { setCookie } = await manager.commit(session);
        if (old) expect(setCookie).toBe(`sid=${signature.sign(id, SECRET)}; Path=/; HttpOnly; SameSite=Lax`);
        else expect(setCookie).toBeUndefined();
      }),
      { numRuns: 100 },
    );
  });

  it("a custom genid/validateId pair round-trips ids holding glob characters and colons", async () => {
    const safe = fc.string({ unit: fc.constantFrom(..."abc019*?[]:-_".split("")), minLength: 8, maxLength: 40 });
    await fc.assert(
      fc.asyncProperty(safe, async (id) => {
        const store = new CountingStore();
        const valid = (v: string) => /^[abc019*?[\]:_-]{8,40}$/.test(v);
        const manager = createSessionManager<Data>({ store, secret: SECRET, genid: () => id, validateId: valid });
        const first = await manager.load(undefined, { secure: false });
        first.n = 1;
        const { setCookie } = await manager.commit(first);
        expect(first.id).toBe(id);
        const again = await manager.load(setCookie!.split(";")[0], { secure: false });
        expect(again.id).toBe(id);
        expect(again.isNew).toBe(false);
        expect((again as Data).n).toBe(1);
      }),
      { numRuns: 100 },
    );
  });
});

/** JSON as it survives the record: pollution keys dropped at every depth, -0 as 0. */
const UNSAFE = new Set(["__proto__", "constructor", "prototype"]);
const normalize = (v: unknown): unknown => JSON.parse(JSON.stringify(v), (key, value: unknown) => (UNSAFE.has(key) ? undefined : value));

const time = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const meta: fc.Arbitrary<RecordMeta> = fc
  .record({ createdAt: time, expiresAt: time, writtenAt: time, owner: fc.option(fc.string({ unit: codeUnit, maxLength: 40 }), { nil: undefined }) })
  .map(({ owner, ...rest }) => (owner === undefined ? rest : { ...rest, owner }));
const dataObject = fc.dictionary(
  fc.oneof(fc.string({ unit: codeUnit, maxLength: 12 }), fc.constantFrom("__proto__", "constructor", "prototype", "id", "toString")),
  fc.jsonValue({ maxDepth: 3 }),
  { maxKeys: 8 },
);

describe("record format", () => {
  it("encode then decode gives back any metadata and any JSON data", () => {
    fc.assert(
      fc.property(meta, dataObject, (m, data) => {
        const dataText = jsonSerializer.stringify(data);
        const decoded = decodeRecord(encodeRecord(m, dataText));
        expect(decoded).not.toBeNull();
        expect(decoded!.meta).toEqual(m);
        expect(decoded!.dataText).toBe(dataText);
        const parsed = parseData(jsonSerializer, decoded!.dataText);
        expect(parsed).toEqual(normalize(data));
        // No prototype was swapped: the parsed object is a plain object whatever keys it carried.
        expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
        expect(Object.keys(parsed!).some((k) => UNSAFE.has(k))).toBe(false);
      }),
      RUNS,
    );
  });

  it("decodeRecord and parseData never throw, on any string", () => {
    const jsonish = fc.oneof(
      anyText,
      fc.json().map((j) => `${j}\n${j}`),
      fc.tuple(fc.jsonValue(), anyText).map(([j, rest]) => `${JSON.stringify(j)}\n${rest}`),
      fc.tuple(meta, anyText).map(([m, rest]) => encodeRecord(m, rest)),
      fc.tuple(meta, fc.json(), fc.nat()).map(([m, j, cut]) => encodeRecord(m, j).slice(0, cut)),
    );
    fc.assert(
      fc.property(jsonish, (raw) => {
        const decoded = decodeRecord(raw);
        if (decoded !== null) {
          expect(raw.startsWith(raw.slice(0, raw.indexOf("\n")))).toBe(true);
          const data = parseData(jsonSerializer, decoded.dataText);
          if (data !== null) expect(typeof data === "object" && !Array.isArray(data)).toBe(true);
        }
        const direct = parseData(jsonSerializer, raw);
        if (direct !== null) expect(Array.isArray(direct)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it("a stored record of any content never throws out of load; a corrupt one is a fresh session", async () => {
    const id = "6f1c2a44-9b1e-4c7d-8a2f-0e5d3c1b2a99";
    const now = Date.now();
    const live = (rest: string) => encodeRecord({ createdAt: now, expiresAt: now + 60_000, writtenAt: now }, rest);
    const stored = fc.oneof(
      anyText,
      fc.jsonValue().map((j) => JSON.stringify(j)),
      fc.jsonValue().map((j) => live(JSON.stringify(j))),
      anyText.map(live),
      fc.json().chain((j) => fc.nat({ max: j.length }).map((cut) => live(j.slice(0, cut)))),
      fc.jsonValue().map((j) => `${JSON.stringify(j)}\n{}`),
    );
    await fc.assert(
      fc.asyncProperty(stored, async (raw) => {
        const store = new CountingStore();
        await store.inner.create(storeKey(id), raw, 60);
        const manager = createSessionManager<Data>({ store, secret: SECRET });
        const session = await manager.load(`sid=${signature.sign(id, SECRET)}`, { secure: false });
        const decoded = decodeRecord(raw);
        const data = decoded && parseData(jsonSerializer, decoded.dataText);
        const usable = data !== null && decoded!.meta.expiresAt > Date.now();
        expect(session.isNew).toBe(!usable);
        if (!usable) expect(session.id).not.toBe(id);
        // Never a prototype swap on the session, whatever the record said.
        expect(Object.keys(session).some((k) => UNSAFE.has(k))).toBe(false);
        expect(typeof session.regenerate).toBe("function");
      }),
      { numRuns: 500 },
    );
  });
});
