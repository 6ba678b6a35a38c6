import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  ArrayUnique,
  IsArray,
  IsIn,
  IsISO8601,
  IsOptional,
  IsString,
  Length,
} from 'class-validator';

import { API_KEY_SCOPES, ApiKeyScope } from '@parley/authz';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

export const API_KEY_STATUSES = ['active', 'expired', 'revoked', 'creator_removed'] as const;

export type ApiKeyStatus = (typeof API_KEY_STATUSES)[number];

export class CreateApiKeyDto {
  @ApiProperty({ example: 'CRM sync', maxLength: 100 })
  @Transform(trim)
  @IsString()
  @Length(1, 100)
  name: string;

  @ApiProperty({ enum: API_KEY_SCOPES, isArray: true, example: ['conversations:read'] })
  @IsArray()
  @ArrayNotEmpty()
  @ArrayMaxSize(API_KEY_SCOPES.length)
  @ArrayUnique()
  @IsIn(API_KEY_SCOPES, {
    each: true,
    message: `each scope must be one of ${API_KEY_SCOPES.join(', ')}`,
  })
  scopes: ApiKeyScope[];

  @ApiPropertyOptional({
    format: 'date-time',
    description: 'when the key stops working; default 90 days from now, at most 366 days',
  })
  @IsOptional()
  @IsISO8601({ strict: true })
  expiresAt?: string;
}

export class ApiKeyCreatorView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
}

export class ApiKeyView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({
    description: 'the non-secret start of the key, to recognize it',
    example: 'psk_k3x9q2ab',
  })
  prefix: string;
  @ApiProperty({ enum: API_KEY_SCOPES, isArray: true }) scopes: string[];
  @ApiProperty({ enum: API_KEY_STATUSES }) status: ApiKeyStatus;
  @ApiProperty({
    type: ApiKeyCreatorView,
    nullable: true,
    description: 'null once the member is deleted',
  })
  createdBy: ApiKeyCreatorView | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) expiresAt: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) rotatedAt: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'until when the secret replaced by the last rotation still works',
  })
  previousSecretValidUntil: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) revokedAt: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) lastUsedAt: string | null;
  @ApiProperty({ nullable: true, type: String }) lastUsedIp: string | null;
}

export class IssuedApiKeyView extends ApiKeyView {
  @ApiProperty({
    description: 'the key, shown this once: send it as "Authorization: ApiKey <key>"',
    example: 'psk_k3x9q2ab_…',
  })
  key: string;
}

export class ApiKeyListView {
  @ApiProperty({ type: [ApiKeyView] }) items: ApiKeyView[];
}
