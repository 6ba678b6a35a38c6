import { Body, Controller, Delete, HttpCode, Param, Post } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';

import { Policy } from '@parley/authz';
import { IdParam } from '@parley/tenancy';

import { AllowDuringMfaEnrollment } from './mfa-enrollment-route.decorator';
import { ConfirmTotpDto, RecoveryCodesView, RemoveTotpDto, TotpEnrollmentView } from './mfa.dto';
import { MfaService } from './mfa.service';

@ApiTags('mfa')
@ApiBearerAuth()
@Controller('me/mfa')
export class MeMfaController {
  constructor(private readonly mfa: MfaService) {}

  @Post('totp')
  @HttpCode(201)
  @Policy.member()
  @AllowDuringMfaEnrollment()
  @ApiCreatedResponse({ type: TotpEnrollmentView })
  startTotp(): Promise<TotpEnrollmentView> {
    return this.mfa.startTotpEnrollment();
  }

  @Post('totp/confirm')
  @HttpCode(200)
  @Policy.member()
  @AllowDuringMfaEnrollment()
  @ApiOkResponse({ type: RecoveryCodesView })
  confirmTotp(@Body() input: ConfirmTotpDto): Promise<RecoveryCodesView> {
    return this.mfa.confirmTotpEnrollment(input.code);
  }

  @Delete('totp')
  @HttpCode(204)
  @Policy.member()
  @ApiNoContentResponse()
  removeTotp(@Body() input: RemoveTotpDto): Promise<void> {
    return this.mfa.removeTotp(input.code);
  }
}

@ApiTags('mfa')
@ApiBearerAuth()
@Controller('users')
export class UserMfaController {
  constructor(private readonly mfa: MfaService) {}

  /** Lives in the auth library: resetting MFA ends sessions, which tenancy cannot reach. */
  @Delete(':id/mfa')
  @HttpCode(204)
  @Policy.can('update', 'User')
  @ApiNoContentResponse()
  resetMfa(@Param() params: IdParam): Promise<void> {
    return this.mfa.resetForUser(params.id);
  }
}
