import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
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

@ApiTags('auth')
@Controller('auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly context: RequestContext,
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
  @ApiOkResponse({ type: TokenPairView })
  login(@Body() input: LoginDto): Promise<TokenPairView> {
    return this.auth.login(input);
  }

  @Post('refresh')
  @CredentialRoute()
  @HttpCode(200)
  @Policy.public()
  @ApiOkResponse({ type: TokenPairView })
  refresh(@Body() input: RefreshDto): Promise<TokenPairView> {
    return this.auth.refresh(input.refreshToken);
  }

  @Post('logout')
  @HttpCode(204)
  @Policy.member()
  @ApiBearerAuth()
  @ApiNoContentResponse()
  async logout(): Promise<void> {
    const actor = this.context.actor;
    if (actor?.type === 'user') {
      await this.auth.logout(this.context.organizationIdOrThrow(), actor.sessionId);
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
