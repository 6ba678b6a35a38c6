import { ApiProperty } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsString, Length, Max, Min } from 'class-validator';

import { ROLES, Role } from '@parley/core';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

/** Eight hours: long enough for a shift's task, short enough that nobody keeps it. */
export const ELEVATION_MAX_MINUTES = 480;

export const ELEVATION_STATUSES = ['pending', 'approved', 'denied', 'revoked', 'expired'] as const;

export type ElevationStatus = (typeof ELEVATION_STATUSES)[number];

export class RequestElevationDto {
  @ApiProperty({ enum: ROLES, description: 'a role higher than your own', example: 'manager' })
  @IsIn(ROLES, { message: `role must be one of ${ROLES.join(', ')}` })
  role: Role;

  @ApiProperty({
    minimum: 1,
    maximum: ELEVATION_MAX_MINUTES,
    description: 'how long the role applies, counted from the approval',
    example: 30,
  })
  @IsInt({ message: 'minutes must be a whole number' })
  @Min(1)
  @Max(ELEVATION_MAX_MINUTES)
  minutes: number;

  @ApiProperty({
    minLength: 10,
    maxLength: 500,
    example: 'Reassign the queue of an agent on leave',
  })
  @Transform(trim)
  @IsString()
  @Length(10, 500)
  reason: string;
}

export class ElevationMemberView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
}

export class ElevationView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ type: ElevationMemberView }) requester: ElevationMemberView;
  @ApiProperty({ enum: ROLES, description: "the requester's own role when asking" })
  requesterRole: Role;
  @ApiProperty({ enum: ROLES }) role: Role;
  @ApiProperty() minutes: number;
  @ApiProperty() reason: string;
  @ApiProperty({ enum: ELEVATION_STATUSES }) status: ElevationStatus;
  @ApiProperty({ description: 'the role applies right now' }) active: boolean;
  @ApiProperty({ format: 'date-time' }) requestedAt: string;
  @ApiProperty({
    type: ElevationMemberView,
    nullable: true,
    description: 'the admin who approved or denied it',
  })
  decidedBy: ElevationMemberView | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) decidedAt: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String, description: 'the approval' })
  startsAt: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) endsAt: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'when a revocation or expiry ended it',
  })
  endedAt: string | null;
  @ApiProperty({ type: ElevationMemberView, nullable: true }) revokedBy: ElevationMemberView | null;
}

export class ElevationListView {
  @ApiProperty({ type: [ElevationView], description: 'newest first, at most 500' })
  items: ElevationView[];
}
