import { existsSync } from "node:fs";
if (existsSync("node_modules/ioredis")) throw new Error("ioredis is installed: this project must run without it");
console.log("no ioredis");
