// The Express binding lives in ./express/; this path stays for the repository's tests, bench and scripts.
export * from "./express/index.js";
