// NestJS on Express (@nestjs/platform-express) with shared-session: the Express middleware, app.use()'d.
// Run: npm run build && REDIS_URL=redis://127.0.0.1:6379 node --import tsx examples/nestjs-express.ts
import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import type { NestExpressApplication } from "@nestjs/platform-express";
import { expressSession } from "shared-session/express";
import { AppModule } from "./nestjs-app.js";
import { announce, closeOnSignal, cookieName, host, port, secret, storeFromEnv, trustProxy } from "./shared.mjs";

const app = await NestFactory.create<NestExpressApplication>(AppModule, { logger: ["error", "warn"] });
if (trustProxy) app.set("trust proxy", 1); // req.secure from X-Forwarded-Proto: the cookie gets Secure
app.use(expressSession({ store: storeFromEnv(), secret, name: cookieName }));
await app.listen(port, host);
announce("nestjs-express", app.getHttpServer());
closeOnSignal(() => app.close());
