import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { SessionTerminator } from '@parley/core';
import { ApiKeyRevoker } from '@parley/security';
import { TenancyModule } from '@parley/tenancy';

import { AccessReviewController } from './access/access-review.controller';
import { AccessReviewService } from './access/access-review.service';
import { ElevationsController } from './access/elevations.controller';
import { ElevationsService } from './access/elevations.service';
import { ApiKeyAuthenticator } from './api-keys/api-key-authenticator';
import { ApiKeyEntity } from './api-keys/api-key.entity';
import { ApiKeysController } from './api-keys/api-keys.controller';
import { ApiKeysService } from './api-keys/api-keys.service';
import { AuthController, MeController } from './auth.controller';
import { AuthService } from './auth.service';
import { CsrfTokens } from './cookie-mode/csrf-tokens';
import { DashboardCookies } from './cookie-mode/dashboard-cookies';
import { RefreshCookieAuthenticator } from './cookie-mode/refresh-cookie-authenticator';
import { RefreshTokenRecords } from './cookie-mode/refresh-token-records';
import { JwksController } from './jwks.controller';
import { AuthenticationGuard } from './authentication.guard';
import { MeMfaController, UserMfaController } from './mfa/mfa.controller';
import { MfaService } from './mfa/mfa.service';
import { MfaVerificationService } from './mfa/mfa-verification.service';
import { PasswordAttempts } from './passwords/password-attempts.service';
import { PasswordChangeService } from './passwords/password-change.service';
import { MePasswordController, UserLockController } from './passwords/passwords.controller';
import { RecoveryCodeEntity } from './mfa/recovery-code.entity';
import { TotpFactorEntity } from './mfa/totp-factor.entity';
import { RefreshTokenEntity } from './refresh-token.entity';
import { SessionEntity } from './session.entity';
import { MemberSessionsController, SessionsController } from './sessions.controller';
import { RevocationChannel } from './revocation-channel';
import { SessionsService } from './sessions.service';
import { SigningKeys } from './signing-keys';
import { TokenService } from './token.service';

@Global()
@Module({
  imports: [
    TypeOrmModule.forFeature([
      SessionEntity,
      RefreshTokenEntity,
      TotpFactorEntity,
      RecoveryCodeEntity,
      ApiKeyEntity,
    ]),
    TenancyModule,
  ],
  controllers: [
    AuthController,
    MeController,
    JwksController,
    SessionsController,
    MemberSessionsController,
    MeMfaController,
    UserMfaController,
    ApiKeysController,
    MePasswordController,
    UserLockController,
    ElevationsController,
    AccessReviewController,
  ],
  providers: [
    { provide: SessionTerminator, useExisting: SessionsService },
    { provide: ApiKeyRevoker, useExisting: ApiKeysService },
    RevocationChannel,
    AuthService,
    AuthenticationGuard,
    SessionsService,
    SigningKeys,
    TokenService,
    MfaService,
    MfaVerificationService,
    ApiKeyAuthenticator,
    ApiKeysService,
    CsrfTokens,
    DashboardCookies,
    RefreshCookieAuthenticator,
    RefreshTokenRecords,
    PasswordAttempts,
    PasswordChangeService,
    ElevationsService,
    AccessReviewService,
  ],
  exports: [
    SessionTerminator,
    ApiKeyRevoker,
    AuthService,
    AuthenticationGuard,
    SessionsService,
    TokenService,
    SigningKeys,
    ApiKeysService,
  ],
})
export class AuthModule {}
