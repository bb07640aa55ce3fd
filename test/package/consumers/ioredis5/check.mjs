import { readFileSync } from "node:fs";
const { version } = JSON.parse(readFileSync("node_modules/ioredis/package.json", "utf8"));
if (!version.startsWith("5.")) throw new Error(`expected ioredis 5 next to shared-session, got ${version}`);
console.log(`ioredis ${version}`);
