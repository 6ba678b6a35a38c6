import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsEmail,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateNested,
} from 'class-validator';

import { ROLES, Role } from '@parley/core';
import { PASSWORD_LENGTH } from '@parley/crypto';

/** The default minimum; the organization's own (passwordMinLength) is enforced by the service. */
export const PASSWORD_MIN_LENGTH = PASSWORD_LENGTH.standard;
export const PASSWORD_MAX_LENGTH = PASSWORD_LENGTH.max;
export const PASSWORD_MIN_LENGTH_WITH_MFA = PASSWORD_LENGTH.floor;

/**
 * The bounds every new password meets whatever the organization: the service then applies the
 * organization's minimum and the common-password list.
 */
export function NewPasswordField(field = 'password'): PropertyDecorator {
  return applyDecorators(
    ApiProperty({
      minLength: PASSWORD_MIN_LENGTH_WITH_MFA,
      maxLength: PASSWORD_MAX_LENGTH,
      description:
        `at least the organization's passwordMinLength (${PASSWORD_MIN_LENGTH} unless lowered ` +
        'for an organization where every role uses MFA); common passwords are refused',
    }),
    IsString(),
    MinLength(PASSWORD_MIN_LENGTH_WITH_MFA, {
      message: `${field} must be at least ${PASSWORD_MIN_LENGTH_WITH_MFA} characters, and at least the organization's minimum`,
    }),
    MaxLength(PASSWORD_MAX_LENGTH, {
      message: `${field} must be at most ${PASSWORD_MAX_LENGTH} characters; it is never shortened`,
    }),
  );
}

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);
const lower = ({ value }: { value: unknown }) =>
  typeof value === 'string' ? value.trim().toLowerCase() : value;

export class EmailField {
  @ApiProperty({ example: 'ada@example.com', maxLength: 254 })
  @Transform(lower)
  @IsString()
  @MaxLength(254)
  @IsEmail({}, { message: 'email must be an email address' })
  email: string;
}

export class CreateUserDto extends EmailField {
  @ApiProperty({ example: 'Ada Lovelace', minLength: 1, maxLength: 200 })
  @Transform(trim)
  @IsString()
  @Length(1, 200)
  name: string;

  @ApiProperty({ enum: ROLES })
  @IsIn(ROLES as Role[])
  role: Role;

  @NewPasswordField()
  password: string;
}

export class UpdateUserDto {
  @ApiProperty({ enum: ROLES })
  @IsIn(ROLES as Role[])
  role: Role;
}

export class WidgetSettingsDto {
  @ApiProperty({ type: [String], example: ['https://shop.example.com'], maxItems: 50 })
  @IsArray()
  @ArrayMaxSize(50)
  @IsString({ each: true })
  @MaxLength(255, { each: true })
  @Matches(/^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/i, {
    each: true,
    message:
      'allowedOrigins must be origins like https://shop.example.com (scheme, host, optional port)',
  })
  allowedOrigins: string[];
}

export class SecurityPolicyDto {
  @ApiPropertyOptional({
    enum: ROLES,
    isArray: true,
    description: 'roles that must sign in with MFA',
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(4)
  @IsIn(ROLES as Role[], { each: true })
  mfaRequiredRoles?: Role[];

  @ApiPropertyOptional({
    minimum: PASSWORD_MIN_LENGTH_WITH_MFA,
    maximum: 64,
    description: `below ${PASSWORD_MIN_LENGTH} only when every role must use MFA`,
  })
  @IsOptional()
  @IsInt()
  @Min(PASSWORD_MIN_LENGTH_WITH_MFA)
  @Max(64)
  passwordMinLength?: number;

  @ApiPropertyOptional({ minimum: 5, maximum: 480, description: 'a session unused this long ends' })
  @IsOptional()
  @IsInt()
  @Min(5)
  @Max(480)
  sessionIdleMinutes?: number;

  @ApiPropertyOptional({
    minimum: 1,
    maximum: 168,
    description: 'a session ends this long after sign-in',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(168)
  sessionAbsoluteHours?: number;
}

export class UpdateOrganizationDto {
  @ApiPropertyOptional({ minLength: 1, maxLength: 200 })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @Length(1, 200)
  name?: string;

  @ApiPropertyOptional({ type: WidgetSettingsDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => WidgetSettingsDto)
  widget?: WidgetSettingsDto;

  @ApiPropertyOptional({ type: SecurityPolicyDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => SecurityPolicyDto)
  security?: SecurityPolicyDto;
}

export class OrganizationRefView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() slug: string;
}

export class WidgetView {
  @ApiProperty({ description: 'public key the web widget sends to open visitor sessions' })
  key: string;
  @ApiProperty({ type: [String] }) allowedOrigins: string[];
}

export class SecurityPolicyView {
  @ApiProperty({ enum: ROLES, isArray: true }) mfaRequiredRoles: Role[];
  @ApiProperty() passwordMinLength: number;
  @ApiProperty() sessionIdleMinutes: number;
  @ApiProperty() sessionAbsoluteHours: number;
}

export class OrganizationView extends OrganizationRefView {
  @ApiProperty() name: string;
  @ApiProperty({ type: WidgetView }) widget: WidgetView;
  @ApiProperty({ type: SecurityPolicyView }) security: SecurityPolicyView;
}

export class UserView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() email: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: ROLES }) role: Role;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) lastLoginAt: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
}

export class UserListView {
  @ApiProperty({ type: [UserView] }) items: UserView[];
}
