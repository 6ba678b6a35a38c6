import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  IsEmail,
  IsOptional,
  IsString,
  Length,
  Matches,
  MaxLength,
  ValidateIf,
} from 'class-validator';

import { ROLES, Role } from '@parley/core';
import { NewPasswordField, OrganizationRefView, PASSWORD_MAX_LENGTH } from '@parley/tenancy';

import { MFA_CODE_PATTERN } from './mfa/mfa.dto';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);
const lower = ({ value }: { value: unknown }) =>
  typeof value === 'string' ? value.trim().toLowerCase() : value;

export const SLUG_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;

export class SignupDto {
  @ApiProperty({ example: 'Acme Support', maxLength: 200 })
  @Transform(trim)
  @IsString()
  @Length(1, 200)
  organizationName: string;

  @ApiProperty({ example: 'acme', pattern: SLUG_PATTERN.source })
  @Transform(lower)
  @IsString()
  @Matches(SLUG_PATTERN, {
    message: 'organizationSlug must be 1-40 lower-case letters, digits or inner hyphens',
  })
  organizationSlug: string;

  @ApiProperty({ example: 'ada@example.com' })
  @Transform(lower)
  @IsString()
  @MaxLength(254)
  @IsEmail({}, { message: 'email must be an email address' })
  email: string;

  @NewPasswordField()
  password: string;

  @ApiProperty({ example: 'Ada Lovelace' })
  @Transform(trim)
  @IsString()
  @Length(1, 200)
  name: string;
}

export class LoginDto {
  @ApiProperty({ example: 'acme' })
  @Transform(lower)
  @IsString()
  @MaxLength(40)
  organizationSlug: string;

  @ApiProperty({ example: 'ada@example.com' })
  @Transform(lower)
  @IsString()
  @MaxLength(254)
  email: string;

  @ApiProperty()
  @IsString()
  @MaxLength(PASSWORD_MAX_LENGTH)
  password: string;

  @ApiPropertyOptional({
    description: 'when the account has MFA: a six-digit TOTP code or a recovery code',
    example: '123456',
  })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @Matches(MFA_CODE_PATTERN, { message: 'mfaCode must be six digits or a recovery code' })
  mfaCode?: string;
}

export class RefreshDto {
  @ApiPropertyOptional({
    description: 'required, except in cookie mode, where the __Host-parley_refresh cookie is read',
  })
  // Absent is allowed (cookie mode); null is not, so a present value is always a checked string.
  @ValidateIf((input: RefreshDto) => input.refreshToken !== undefined)
  @IsString()
  @Length(20, 200)
  refreshToken?: string;
}

export class TokenPairView {
  @ApiProperty() accessToken: string;
  @ApiProperty() refreshToken: string;
  @ApiProperty({ enum: ['Bearer'] }) tokenType: 'Bearer';
  @ApiProperty({ description: 'seconds until the access token expires' }) expiresIn: number;
}

export class SignupUserView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() email: string;
  @ApiProperty({ enum: ROLES }) role: Role;
}

export class SignupView extends TokenPairView {
  @ApiProperty({ type: OrganizationRefView }) organization: OrganizationRefView;
  @ApiProperty({ type: SignupUserView }) user: SignupUserView;
}

export class MeView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() email: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: ROLES }) role: Role;
  @ApiProperty({ type: OrganizationRefView }) organization: OrganizationRefView;
}
