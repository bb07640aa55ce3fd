// The conformance run on vitest 2 (out/report.json, vitest's JSON reporter): nothing failed, and the
// MinimalStore's missing capabilities were reported as skipped, one test each: ttl, list, two of
// compareAndSet, two of getVersioned, two of ownerIndex.
import { readFileSync } from "node:fs";

const report = JSON.parse(readFileSync("out/report.json", "utf8"));
const tests = report.testResults.flatMap((file) => file.assertionResults);
const failed = tests.filter((t) => t.status === "failed");
if (failed.length > 0) throw new Error(`failed: ${failed.map((t) => t.fullName).join("; ")}`);
const skipped = tests.filter((t) => t.status === "skipped" || t.status === "pending").map((t) => t.fullName);
if (skipped.length !== 8 || !skipped.every((name) => name.includes("MinimalStore") || name.includes("without optional capabilities"))) {
  throw new Error(`expected the 8 capability tests of the minimal store skipped, got ${skipped.length}: ${skipped.join("; ")}`);
}
console.log(`conformance on vitest 2: ${tests.length - skipped.length} passed, ${skipped.length} skipped for missing capabilities`);
