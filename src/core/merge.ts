import type { Serializer } from "./record.js";

/** Session data, top-level keys to values. */
type Data = Record<string, unknown>;

/**
 * How a concurrent write is merged: by top-level key. A request's changes are the keys whose value
 * it changed since it loaded (compared as the serializer writes them); on a compare-and-set conflict
 * they are re-applied onto whatever the store holds now, so another request's changes to other keys
 * survive, and this request's win for the keys it changed. Pure: no store, no session object.
 */

/** Top-level keys whose value differs between `before` and `after`, mapped to the new value; `undefined` marks a deletion. `skip` names keys that are never data. */
export function changesBetween(serializer: Serializer, before: Data, after: Data, skip: ReadonlySet<string>): Map<string, unknown> {
  const changes = new Map<string, unknown>();
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  for (const key of keys) {
    if (skip.has(key)) continue; // never data: dropped on load, and `__proto__` must not be assigned
    const a = key in before ? serializer.stringify({ [key]: before[key] }) : undefined;
    const b = key in after && after[key] !== undefined ? serializer.stringify({ [key]: after[key] }) : undefined;
    if (a !== b) changes.set(key, b === undefined ? undefined : after[key]);
  }
  return changes;
}

/** `current` with `changes` applied: a new object, `current` is left as it is. */
export function applyChanges(current: Data, changes: ReadonlyMap<string, unknown>): Data {
  const merged: Data = { ...current };
  for (const [key, value] of changes) {
    if (value === undefined) delete merged[key];
    else merged[key] = value;
  }
  return merged;
}
