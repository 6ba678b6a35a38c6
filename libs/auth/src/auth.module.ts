import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { TenancyModule } from '@parley/tenancy';

import { AuthController, MeController } from './auth.controller';
import { AuthService } from './auth.service';
import { AuthenticationGuard } from './authentication.guard';
import { RefreshTokenEntity } from './refresh-token.entity';
import { SessionEntity } from './session.entity';
import { SessionsService } from './sessions.service';
import { SigningKeys } from './signing-keys';
import { TokenService } from './token.service';

@Global()
@Module({
  imports: [TypeOrmModule.forFeature([SessionEntity, RefreshTokenEntity]), TenancyModule],
  controllers: [AuthController, MeController],
  providers: [AuthService, AuthenticationGuard, SessionsService, SigningKeys, TokenService],
  exports: [AuthService, AuthenticationGuard, SessionsService, TokenService],
})
export class AuthModule {}
