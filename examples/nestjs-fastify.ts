// NestJS on Fastify (@nestjs/platform-fastify) with shared-session: the Fastify plugin, app.register()'d.
// Run: npm run build && REDIS_URL=redis://127.0.0.1:6379 node --import tsx examples/nestjs-fastify.ts
import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import { FastifyAdapter, type NestFastifyApplication } from "@nestjs/platform-fastify";
import { fastifySession } from "shared-session/fastify";
import { AppModule } from "./nestjs-app.js";
import { announce, closeOnSignal, cookieName, host, port, secret, storeFromEnv, trustProxy } from "./shared.mjs";

const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter({ trustProxy }), { logger: ["error", "warn"] });
await app.register(fastifySession, { store: storeFromEnv(), secret, name: cookieName });
await app.listen(port, host);
announce("nestjs-fastify", app.getHttpServer());
closeOnSignal(() => app.close());
