// The NestJS app of examples/nestjs-express.ts and examples/nestjs-fastify.ts: one controller, the same
// on both platforms. Nest's own @Session() parameter decorator hands it `req.session` /
// `request.session`, which the shared-session middleware or plugin put there. No providers are
// injected, so no decorator metadata is needed (tsx and esbuild do not emit it).
import { BadRequestException, Body, Controller, Get, HttpCode, Module, Post, Req, Session, UnauthorizedException } from "@nestjs/common";
import type { Session as SharedSession } from "shared-session";
import { whoami } from "./shared.mjs";

/** What this app keeps in a session. */
interface AppSession {
  user?: string;
  count?: number;
}
type S = SharedSession & AppSession;

@Controller()
export class SessionController {
  @Get("me")
  me(@Session() session: S) {
    return whoami(session);
  }

  @Post("login")
  @HttpCode(200)
  async login(@Req() req: { session: S }, @Body() body: { user?: unknown } | undefined) {
    if (typeof body?.user !== "string" || body.user === "") throw new BadRequestException("user is required");
    await req.session.regenerate(); // a new id and empty data at login: the fixation defence
    // On Express, regenerate() puts a new object in req.session (as express-session does): read it again.
    req.session.user = body.user;
    req.session.count = 0;
    return whoami(req.session); // sent only once the session is in the store
  }

  @Post("count")
  @HttpCode(200)
  count(@Session() session: S) {
    if (!session.user) throw new UnauthorizedException("log in first");
    session.count = (session.count ?? 0) + 1;
    return whoami(session);
  }

  @Post("logout")
  @HttpCode(200)
  async logout(@Session() session: S) {
    await session.destroy();
    return whoami(session);
  }
}

@Module({ controllers: [SessionController] })
export class AppModule {}
