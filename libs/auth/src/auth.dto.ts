import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsEmail, IsOptional, IsString, Length, Matches, MaxLength } from 'class-validator';

import { ROLES, Role } from '@parley/core';
import { OrganizationRefView, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '@parley/tenancy';

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

  @ApiProperty({ minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH })
  @IsString()
  @Length(PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH, {
    message: `password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`,
  })
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

  @ApiPropertyOptional({ description: 'TOTP code when the account has MFA' })
  @IsOptional()
  @IsString()
  @Matches(/^\d{6}$/, { message: 'mfaCode must be six digits' })
  mfaCode?: string;
}

export class RefreshDto {
  @ApiProperty()
  @IsString()
  @Length(20, 200)
  refreshToken: string;
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
