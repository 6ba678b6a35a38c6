import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIP,
  IsISO8601,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  Max,
  Min,
  ValidateIf,
} from 'class-validator';

import { CanonicalUuid } from '@parley/core';

import { ALERT_SEVERITIES, AlertSeverity } from '../alerts/security-alert';
import { INCIDENT_STATUSES, IncidentStatus } from './incident.entity';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

const whole = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;

/** Longest note, root cause or lessons learned, in characters. */
export const INCIDENT_TEXT_MAX = 10_000;

/** A week: long enough to outlast an attack, short enough that no block is forgotten for good. */
export const BLOCK_MAX_MINUTES = 7 * 24 * 60;

export const INCIDENT_ACTION_TYPES = [
  'end_user_sessions',
  'revoke_api_key',
  'block_address',
] as const;

export type IncidentActionType = (typeof INCIDENT_ACTION_TYPES)[number];

export class IncidentQueryDto {
  @ApiPropertyOptional({ enum: INCIDENT_STATUSES })
  @IsOptional()
  @IsIn(INCIDENT_STATUSES, { message: `status must be one of ${INCIDENT_STATUSES.join(', ')}` })
  status?: IncidentStatus;

  @ApiPropertyOptional({ enum: ALERT_SEVERITIES })
  @IsOptional()
  @IsIn(ALERT_SEVERITIES, { message: `severity must be one of ${ALERT_SEVERITIES.join(', ')}` })
  severity?: AlertSeverity;

  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Transform(whole)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;

  @ApiPropertyOptional({ description: 'nextCursor of the previous page' })
  @IsOptional()
  @Matches(/^[A-Za-z0-9_-]{1,200}$/, { message: 'cursor is not valid' })
  cursor?: string;
}

export class UpdateIncidentDto {
  @ApiPropertyOptional({
    enum: INCIDENT_STATUSES,
    description: 'only the next status: open, acknowledged, contained, resolved',
  })
  @IsOptional()
  @IsIn(INCIDENT_STATUSES, { message: `status must be one of ${INCIDENT_STATUSES.join(', ')}` })
  status?: IncidentStatus;

  @ApiPropertyOptional({
    enum: ALERT_SEVERITIES,
    description: 'sets the response deadline again, from the opening time',
  })
  @IsOptional()
  @IsIn(ALERT_SEVERITIES, { message: `severity must be one of ${ALERT_SEVERITIES.join(', ')}` })
  severity?: AlertSeverity;

  @ApiPropertyOptional({ maxLength: INCIDENT_TEXT_MAX, description: 'adds a note (sealed)' })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @Length(1, INCIDENT_TEXT_MAX)
  note?: string;

  @ApiPropertyOptional({ maxLength: INCIDENT_TEXT_MAX, description: 'required to resolve' })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @Length(1, INCIDENT_TEXT_MAX)
  rootCause?: string;

  @ApiPropertyOptional({ maxLength: INCIDENT_TEXT_MAX })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @Length(1, INCIDENT_TEXT_MAX)
  lessonsLearned?: string;

  @ApiPropertyOptional({
    description: 'true starts the GDPR Article 33 clock; once true it stays true',
  })
  @IsOptional()
  @IsBoolean()
  personalDataBreach?: boolean;

  @ApiPropertyOptional({
    format: 'date-time',
    description: 'when the organization became aware of the breach (default: now)',
  })
  @IsOptional()
  @IsISO8601({ strict: true })
  awareAt?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'when the regulator was notified' })
  @IsOptional()
  @IsISO8601({ strict: true })
  regulatorNotifiedAt?: string;
}

export class IncidentActionDto {
  @ApiProperty({ enum: INCIDENT_ACTION_TYPES })
  @IsIn(INCIDENT_ACTION_TYPES, {
    message: `type must be one of ${INCIDENT_ACTION_TYPES.join(', ')}`,
  })
  type: IncidentActionType;

  @ApiPropertyOptional({ format: 'uuid', description: 'end_user_sessions: the member' })
  @ValidateIf((action: IncidentActionDto) => action.type === 'end_user_sessions')
  @CanonicalUuid()
  @IsUUID('all', { message: 'userId must be a UUID' })
  userId?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'revoke_api_key: the key' })
  @ValidateIf((action: IncidentActionDto) => action.type === 'revoke_api_key')
  @CanonicalUuid()
  @IsUUID('all', { message: 'apiKeyId must be a UUID' })
  apiKeyId?: string;

  @ApiPropertyOptional({
    description: 'block_address: an IPv4 or IPv6 address (IPv6 is blocked by its /64)',
    example: '203.0.113.7',
  })
  @ValidateIf((action: IncidentActionDto) => action.type === 'block_address')
  @IsString()
  @IsIP(undefined, { message: 'address must be an IPv4 or IPv6 address' })
  address?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: BLOCK_MAX_MINUTES })
  @ValidateIf((action: IncidentActionDto) => action.type === 'block_address')
  @IsInt({ message: 'minutes must be a whole number' })
  @Min(1)
  @Max(BLOCK_MAX_MINUTES)
  minutes?: number;
}

/** The fields each action type takes; any other is refused. */
export const ACTION_FIELDS: Record<IncidentActionType, readonly (keyof IncidentActionDto)[]> = {
  end_user_sessions: ['userId'],
  revoke_api_key: ['apiKeyId'],
  block_address: ['address', 'minutes'],
};

export class IncidentSummaryView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ example: 'failed_login_burst_account' }) rule: string;
  @ApiProperty({ nullable: true, type: String }) subjectType: string | null;
  @ApiProperty({ nullable: true, type: String }) subjectId: string | null;
  @ApiProperty() summary: string;
  @ApiProperty({ enum: ALERT_SEVERITIES }) severity: AlertSeverity;
  @ApiProperty({ enum: INCIDENT_STATUSES }) status: IncidentStatus;
  @ApiProperty() alertCount: number;
  @ApiProperty({ format: 'date-time' }) openedAt: string;
  @ApiProperty({ format: 'date-time' }) lastAlertAt: string;
  @ApiProperty({ format: 'date-time', description: 'acknowledge it by then' })
  responseDueAt: string;
  @ApiProperty({ description: 'still open past its response deadline' }) overdue: boolean;
  @ApiProperty({ description: '0 until escalated, then 1 to 3' }) escalationLevel: number;
  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  escalatedAt: string | null;
  @ApiProperty() personalDataBreach: boolean;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) awareAt: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'awareAt + 72 hours (GDPR Article 33)',
  })
  regulatorDueAt: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  regulatorNotifiedAt: string | null;
  @ApiProperty() regulatorEscalationLevel: number;
  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  regulatorEscalatedAt: string | null;
}

export class IncidentStepView {
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) at: string | null;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'the admin' })
  by: string | null;
}

export class IncidentAlertView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() rule: string;
  @ApiProperty({ enum: ALERT_SEVERITIES }) severity: AlertSeverity;
  @ApiProperty() summary: string;
  @ApiProperty({ format: 'date-time' }) occurredAt: string;
  @ApiProperty({ type: 'object', additionalProperties: true }) details: Record<string, unknown>;
}

export class IncidentNoteView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid', nullable: true, type: String }) authorId: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty() body: string;
}

export class IncidentActionView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: INCIDENT_ACTION_TYPES }) type: IncidentActionType;
  @ApiProperty({ format: 'uuid', description: 'the member, API key or address block' })
  targetId: string;
  @ApiProperty({ type: 'object', additionalProperties: true }) details: Record<string, unknown>;
  @ApiProperty({ format: 'uuid', nullable: true, type: String }) takenBy: string | null;
  @ApiProperty({ format: 'date-time' }) takenAt: string;
}

export class IncidentView extends IncidentSummaryView {
  @ApiProperty({ type: IncidentStepView }) acknowledged: IncidentStepView;
  @ApiProperty({ type: IncidentStepView }) contained: IncidentStepView;
  @ApiProperty({ type: IncidentStepView }) resolved: IncidentStepView;
  @ApiProperty({ nullable: true, type: String }) rootCause: string | null;
  @ApiProperty({ nullable: true, type: String }) lessonsLearned: string | null;
  @ApiProperty({ type: [IncidentAlertView], description: 'oldest first' })
  alerts: IncidentAlertView[];
  @ApiProperty({ type: [IncidentNoteView], description: 'oldest first' })
  notes: IncidentNoteView[];
  @ApiProperty({ type: [IncidentActionView], description: 'oldest first' })
  actions: IncidentActionView[];
}

export class IncidentPage {
  @ApiProperty({ type: [IncidentSummaryView], description: 'newest first' })
  items: IncidentSummaryView[];
  @ApiProperty({ nullable: true, type: String }) nextCursor: string | null;
}
