import { Body, Controller, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiNoContentResponse, ApiTags } from '@nestjs/swagger';

import { Policy } from '@parley/authz';
import { IdParam } from '@parley/tenancy';

import { PasswordAttempts } from './password-attempts.service';
import { PasswordChangeService } from './password-change.service';
import { ChangePasswordDto } from './passwords.dto';

@ApiTags('auth')
@ApiBearerAuth()
@Controller('me')
export class MePasswordController {
  constructor(private readonly passwordChange: PasswordChangeService) {}

  /** Needs the current password; ends every other session of the member. */
  @Post('password')
  @HttpCode(204)
  @Policy.member()
  @ApiNoContentResponse()
  change(@Body() input: ChangePasswordDto): Promise<void> {
    return this.passwordChange.change(input);
  }
}

@ApiTags('users')
@ApiBearerAuth()
@Controller('users')
export class UserLockController {
  constructor(private readonly attempts: PasswordAttempts) {}

  /** Lives in the auth library beside the sign-in counters it clears. */
  @Post(':id/unlock')
  @HttpCode(204)
  @Policy.can('update', 'User')
  @ApiNoContentResponse()
  unlock(@Param() params: IdParam): Promise<void> {
    return this.attempts.unlock(params.id);
  }
}
