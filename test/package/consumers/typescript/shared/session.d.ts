// A .d.ts that augments a module must itself be a module: without the `export {}` below, this
// `declare module` would declare a new ambient module and replace shared-session's types.
declare module "shared-session" {
  interface SessionData {
    userId: number;
    views: number;
  }
}
export {};
