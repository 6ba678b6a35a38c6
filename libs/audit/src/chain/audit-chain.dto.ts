import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

import type { ChainBreak } from './audit-chain';

const toInteger = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value;

export class AuditExportQueryDto {
  @ApiPropertyOptional({ minimum: 1, default: 1, description: 'first sequence number' })
  @IsOptional()
  @Transform(toInteger)
  @IsInt({ message: 'fromSeq must be a whole number' })
  @Min(1)
  @Max(Number.MAX_SAFE_INTEGER)
  fromSeq?: number;

  @ApiPropertyOptional({ minimum: 1, description: 'last sequence number (at most 50,000 entries)' })
  @IsOptional()
  @Transform(toInteger)
  @IsInt({ message: 'toSeq must be a whole number' })
  @Min(1)
  @Max(Number.MAX_SAFE_INTEGER)
  toSeq?: number;
}

export class ChainHeadView {
  @ApiProperty() seq: number;
  @ApiProperty({ description: 'hex SHA-256' }) hash: string;
}

export class ChainBreakView {
  @ApiProperty({ description: 'the first entry that fails' }) seq: number;
  @ApiProperty({ enum: ['missing', 'out_of_order', 'altered', 'rewritten'] }) reason: ChainBreak;
  @ApiProperty() detail: string;
}

export class AuditVerifyView {
  @ApiProperty() valid: boolean;
  @ApiProperty({ description: 'entries verified in order before any break' }) entries: number;
  @ApiProperty({ type: ChainHeadView, nullable: true }) head: ChainHeadView | null;
  @ApiPropertyOptional({ type: ChainBreakView }) broken?: ChainBreakView;
  @ApiProperty({ description: 'stored checkpoints checked against the chain' })
  checkpoints: { checked: number };
}

export class CheckpointView {
  @ApiProperty({ format: 'uuid' }) organizationId: string;
  @ApiProperty() seq: number;
  @ApiProperty() hash: string;
  @ApiProperty({ format: 'date-time' }) signedAt: string;
  @ApiProperty() kid: string;
  @ApiProperty({ description: 'Ed25519, base64url' }) signature: string;
}

export class CheckpointListView {
  @ApiProperty({ type: [CheckpointView] }) items: CheckpointView[];
}
