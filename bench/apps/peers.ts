/**
 * The peer libraries, loaded without their type declarations: express-session, koa-session and
 * @fastify/session each declare a `session` property on the framework's request, as our bindings
 * do, and both cannot be in one TypeScript program. Only what the benchmark calls is typed here.
 */
import { createRequire } from "node:module";
import type { RequestHandler } from "express";
import type { FastifyPluginCallback } from "fastify";
import type Koa from "koa";

const require = createRequire(import.meta.url);

/** An express-session store (connect-redis, connect-memcached). */
export interface ExpressSessionStore {
  readonly __store: true;
}

export interface ExpressSessionOptions {
  store: ExpressSessionStore;
  secret: string;
  resave: boolean;
  saveUninitialized: boolean;
  rolling: boolean;
  cookie: { httpOnly: boolean; sameSite: "lax"; secure: boolean };
}

/** `req.session` of express-session and @fastify/session: data as properties, callback methods. */
export interface PeerSession {
  [key: string]: unknown;
  regenerate(callback: (err?: unknown) => void): void;
}

/** `ctx.session` of koa-session. */
export interface KoaPeerSession {
  [key: string]: unknown;
  regenerate(): Promise<void>;
}

export interface NodeRedisClient {
  connect(): Promise<unknown>;
  destroy(): void;
  on(event: "error", listener: (err: unknown) => void): unknown;
}

export const expressSession = require("express-session") as (options: ExpressSessionOptions) => RequestHandler;

export const ConnectRedisStore = (require("connect-redis") as { RedisStore: new (options: { client: NodeRedisClient; prefix: string; ttl: number }) => ExpressSessionStore })
  .RedisStore;

export const connectMemcached = require("connect-memcached") as (
  session: unknown,
) => new (options: { hosts: string[]; prefix: string; ttl: number }) => ExpressSessionStore & { client: { end(): void } };

export const createNodeRedisClient = (require("redis") as { createClient(options: { url: string }): NodeRedisClient }).createClient;

export interface KoaSessionOptions {
  key: string;
  /** Milliseconds. */
  maxAge: number;
  rolling: boolean;
  renew: boolean;
  httpOnly: boolean;
  signed: boolean;
  sameSite: "lax";
  prefix: string;
  store: KoaRedisStore;
}

export interface KoaRedisStore {
  readonly client: { disconnect(): void };
}

export const koaSession = (require("koa-session") as { default: (options: KoaSessionOptions, app: Koa) => Koa.Middleware }).default;

export const koaRedis = require("koa-redis") as (options: { url: string }) => KoaRedisStore;

export interface FastifyPeerSessionOptions {
  secret: string;
  cookieName: string;
  cookie: { httpOnly: boolean; sameSite: "lax"; secure: boolean };
  saveUninitialized: boolean;
  rolling: boolean;
  store: ExpressSessionStore;
}

export const fastifyPeerSession = require("@fastify/session") as FastifyPluginCallback<FastifyPeerSessionOptions>;
export const fastifyCookie = require("@fastify/cookie") as FastifyPluginCallback;
