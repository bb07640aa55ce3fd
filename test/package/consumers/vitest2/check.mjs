// The conformance run on vitest 2 (out/report.json, vitest's JSON reporter): nothing failed, and on
// the store without optional capabilities (minimal.test.js) every test outside the `records` suite
// (what every store does) was reported as skipped, every `records` test passed.
import { readFileSync } from "node:fs";

const report = JSON.parse(readFileSync("out/report.json", "utf8"));
const tests = report.testResults.flatMap((file) => file.assertionResults);
const failed = tests.filter((t) => t.status === "failed");
if (failed.length > 0) throw new Error(`failed: ${failed.map((t) => t.fullName).join("; ")}`);
const minimal = tests.filter((t) => t.ancestorTitles[0]?.includes("without optional capabilities"));
const skipped = (t) => t.status === "skipped" || t.status === "pending";
const records = minimal.filter((t) => t.ancestorTitles[1] === "records");
const optional = minimal.filter((t) => t.ancestorTitles[1] !== "records");
if (records.length === 0 || records.some(skipped)) throw new Error(`records tests not all run: ${records.map((t) => `${t.title} ${t.status}`).join("; ")}`);
if (optional.length === 0 || !optional.every(skipped)) {
  throw new Error(`capability tests of the minimal store not all skipped: ${optional.map((t) => `${t.fullName} ${t.status}`).join("; ")}`);
}
console.log(`conformance on vitest 2: ${tests.length - optional.length} passed, ${optional.length} skipped for missing capabilities`);
