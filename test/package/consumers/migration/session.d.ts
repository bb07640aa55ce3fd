declare module "shared-session" {
  interface SessionData {
    userId: number;
  }
}
export {};
