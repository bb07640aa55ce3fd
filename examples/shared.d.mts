// Types of shared.mjs, for the TypeScript examples (nestjs-*.ts).
import type { Server } from "node:http";
import type { SessionStore } from "shared-session";

export function storeFromEnv(): SessionStore;
export const secret: string;
export const cookieName: string | undefined;
export const trustProxy: boolean;
export const port: number;
export const host: string;
export function announce(framework: string, server: Server): void;
export function closeOnSignal(close: () => Promise<unknown>): void;
export function whoami(session: { user?: unknown; count?: unknown }): { user: string | null; count: number };
export function page(framework: string, session: object): string;
export function parseForm(text: string): Record<string, string>;
