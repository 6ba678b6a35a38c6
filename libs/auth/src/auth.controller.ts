import { Body, Controller, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';

import { Policy } from '@parley/authz';
import { NotFoundProblem, RequestContext } from '@parley/core';
import { CredentialRoute } from '@parley/security';
import { OrganizationsService, UsersService } from '@parley/tenancy';

import { LoginDto, MeView, RefreshDto, SignupDto, SignupView, TokenPairView } from './auth.dto';
import { AuthService } from './auth.service';
import {
  AcceptsRefreshCookie,
  ApiCookieModeResponse,
  ApiCsrfHeader,
} from './cookie-mode/cookie-mode.decorator';
import { DashboardTokenView } from './cookie-mode/cookie-mode.dto';
import {
  CookieReply,
  CookieRequest,
  DashboardCookies,
  refreshCookieOf,
  wantsCookieMode,
} from './cookie-mode/dashboard-cookies';
import { RefreshCookieAuthenticator } from './cookie-mode/refresh-cookie-authenticator';
import { AllowDuringMfaEnrollment } from './mfa/mfa-enrollment-route.decorator';

@ApiTags('auth')
@Controller('auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly context: RequestContext,
    private readonly refreshCookies: RefreshCookieAuthenticator,
    private readonly dashboardCookies: DashboardCookies,
  ) {}

  @Post('signup')
  @CredentialRoute()
  @HttpCode(201)
  @Policy.public()
  @ApiCreatedResponse({ type: SignupView })
  signup(@Body() input: SignupDto): Promise<SignupView> {
    return this.auth.signup(input);
  }

  @Post('login')
  @CredentialRoute()
  @HttpCode(200)
  @Policy.public()
  @ApiCookieModeResponse(TokenPairView)
  async login(
    @Body() input: LoginDto,
    @Req() request: CookieRequest,
    @Res({ passthrough: true }) reply: CookieReply,
  ): Promise<TokenPairView | DashboardTokenView> {
    if (!wantsCookieMode(request)) {
      return this.auth.login(input);
    }
    this.refreshCookies.assertDashboardOrigin(request);

    return this.dashboardCookies.deliver(reply, await this.auth.login(input));
  }

  /** A body token is used as given; without one, the verified refresh cookie (cookie mode). */
  @Post('refresh')
  @CredentialRoute()
  @HttpCode(200)
  @Policy.public()
  @ApiCookieModeResponse(TokenPairView)
  @ApiCsrfHeader()
  async refresh(
    @Body() input: RefreshDto,
    @Req() request: CookieRequest,
    @Res({ passthrough: true }) reply: CookieReply,
  ): Promise<TokenPairView | DashboardTokenView> {
    if (input.refreshToken === undefined) {
      const fromCookie = await this.refreshCookies.refreshTokenOf(request);

      return this.dashboardCookies.deliver(reply, await this.auth.refresh(fromCookie));
    }
    if (!wantsCookieMode(request)) {
      return this.auth.refresh(input.refreshToken);
    }
    this.refreshCookies.assertDashboardOrigin(request);

    return this.dashboardCookies.deliver(reply, await this.auth.refresh(input.refreshToken));
  }

  @Post('logout')
  @HttpCode(204)
  @Policy.member()
  @AllowDuringMfaEnrollment()
  @AcceptsRefreshCookie()
  @ApiBearerAuth()
  @ApiCsrfHeader()
  @ApiNoContentResponse()
  async logout(
    @Req() request: CookieRequest,
    @Res({ passthrough: true }) reply: CookieReply,
  ): Promise<void> {
    const actor = this.context.actor;
    if (actor?.type === 'user') {
      await this.auth.logout(this.context.organizationIdOrThrow(), actor.sessionId);
    }
    if (wantsCookieMode(request) || refreshCookieOf(request) !== undefined) {
      this.dashboardCookies.clear(reply);
    }
  }
}

@ApiTags('auth')
@ApiBearerAuth()
@Controller('me')
export class MeController {
  constructor(
    private readonly users: UsersService,
    private readonly organizations: OrganizationsService,
    private readonly context: RequestContext,
  ) {}

  @Get()
  @Policy.member()
  @AllowDuringMfaEnrollment()
  @ApiOkResponse({ type: MeView })
  async show(): Promise<MeView> {
    const actor = this.context.actor;
    if (actor?.type !== 'user') {
      throw new NotFoundProblem('user');
    }
    const [user, organization] = await Promise.all([
      this.users.findOrThrow(actor.id),
      this.organizations.currentOrThrow(),
    ]);

    return {
      id: user.id,
      email: user.email,
      name: user.name,
      role: user.role,
      organization: { id: organization.id, slug: organization.slug },
    };
  }
}
