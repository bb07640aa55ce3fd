/** Characters Redis glob patterns (SCAN MATCH, KEYS) treat specially. */
const GLOB_SPECIAL = /[*?[\]\\]/g;

/**
 * Escape `text` so that it matches only itself in a Redis glob pattern: a prefix such as `app[1]:`
 * must not list the keys of `app1:`.
 */
export function escapeGlob(text: string): string {
  return text.replace(GLOB_SPECIAL, "\\$&");
}
