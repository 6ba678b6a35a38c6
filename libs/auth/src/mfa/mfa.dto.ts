import { ApiProperty } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsString, Matches } from 'class-validator';

import { RECOVERY_CODE_SOURCE } from './recovery-codes';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

/** Six digits, or a recovery code: what a member may type where a second factor is asked for. */
export const MFA_CODE_PATTERN = new RegExp(`^(?:\\d{6}|${RECOVERY_CODE_SOURCE})$`, 'i');

export class ConfirmTotpDto {
  @ApiProperty({ example: '123456', description: 'a code from the authenticator app' })
  @Transform(trim)
  @IsString()
  @Matches(/^\d{6}$/, { message: 'code must be six digits' })
  code: string;
}

export class RemoveTotpDto {
  @ApiProperty({ example: '123456', description: 'a current TOTP code or an unused recovery code' })
  @Transform(trim)
  @IsString()
  @Matches(MFA_CODE_PATTERN, { message: 'code must be six digits or a recovery code' })
  code: string;
}

export class TotpEnrollmentView {
  @ApiProperty({
    description: 'otpauth:// URI for the authenticator app (show it as a QR code)',
    example: 'otpauth://totp/Parley:acme:ada%40example.com?secret=...&issuer=Parley',
  })
  otpauthUri: string;

  @ApiProperty({ description: 'the Base32 secret, for typing in by hand; shown only now' })
  secret: string;
}

export class RecoveryCodesView {
  @ApiProperty({
    type: [String],
    description: 'ten single-use recovery codes; shown only now, stored only as hashes',
  })
  recoveryCodes: string[];
}
