import { ApiProperty } from '@nestjs/swagger';

import { ROLES, Role } from '@parley/core';

export class ReviewedApiKeyView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ example: 'psk_k3x9q2ab' }) prefix: string;
  @ApiProperty({ format: 'date-time' }) expiresAt: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) lastUsedAt: string | null;
}

export class ReviewedApiKeysView {
  @ApiProperty({ description: 'keys of this member that still authenticate' }) active: number;
  @ApiProperty({ type: [ReviewedApiKeyView] }) items: ReviewedApiKeyView[];
}

export class ReviewedMfaView {
  @ApiProperty({ description: 'has a confirmed TOTP factor' }) enrolled: boolean;
  @ApiProperty({ description: "the organization's policy requires MFA for this role" })
  required: boolean;
}

export class ReviewedElevationView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: ROLES }) role: Role;
  @ApiProperty({ format: 'date-time' }) startsAt: string;
  @ApiProperty({ format: 'date-time' }) endsAt: string;
}

export class MemberReviewView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() email: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: ROLES, description: "the member's own role, without elevations" })
  role: Role;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) lastLoginAt: string | null;
  @ApiProperty({
    description: 'no login in the last 90 days (or never, for a member added before that)',
  })
  inactive: boolean;
  @ApiProperty({ type: ReviewedMfaView }) mfa: ReviewedMfaView;
  @ApiProperty({ type: ReviewedApiKeysView }) apiKeys: ReviewedApiKeysView;
  @ApiProperty({ type: [ReviewedElevationView], description: 'elevations that apply right now' })
  elevations: ReviewedElevationView[];
}

export class AccessReviewSummaryView {
  @ApiProperty() members: number;
  @ApiProperty() inactive: number;
  @ApiProperty() mfaEnrolled: number;
  @ApiProperty({ description: 'members whose role requires MFA and who have not enrolled' })
  mfaMissing: number;
  @ApiProperty() activeApiKeys: number;
  @ApiProperty() activeElevations: number;
}

export class AccessReviewView {
  @ApiProperty({ format: 'date-time' }) generatedAt: string;
  @ApiProperty({ example: 90 }) inactiveAfterDays: number;
  @ApiProperty({ type: [MemberReviewView] }) items: MemberReviewView[];
  @ApiProperty({ type: AccessReviewSummaryView }) summary: AccessReviewSummaryView;
}
