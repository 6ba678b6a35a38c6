import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsEmail,
  IsIn,
  IsOptional,
  IsString,
  Length,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';

import { ROLES, Role } from '@parley/core';

export const PASSWORD_MIN_LENGTH = 15;
export const PASSWORD_MAX_LENGTH = 256;

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

  @ApiProperty({ minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH })
  @IsString()
  @Length(PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH, {
    message: `password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`,
  })
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

export class OrganizationView extends OrganizationRefView {
  @ApiProperty() name: string;
  @ApiProperty({ type: WidgetView }) widget: WidgetView;
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
