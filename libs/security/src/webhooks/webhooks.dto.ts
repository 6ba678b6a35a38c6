import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Max,
  Min,
} from 'class-validator';

import { CanonicalUuid } from '@parley/core';

import { WebhookDeliveryStatus } from './webhook-delivery.entity';
import { SubscribableWebhookEvent, WEBHOOK_EVENTS } from './webhook-events';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

const integer = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;

export const WEBHOOK_URL_MAX_LENGTH = 2048;

export class WebhookIdParam {
  @ApiProperty({ format: 'uuid' })
  @CanonicalUuid()
  @IsUUID('all', { message: 'id must be a UUID' })
  id: string;
}

const EVENTS_MESSAGE = `each event must be one of ${WEBHOOK_EVENTS.join(', ')}`;

export class CreateWebhookDto {
  @ApiProperty({
    example: 'https://hooks.example.com/parley',
    maxLength: WEBHOOK_URL_MAX_LENGTH,
    description: 'https (http only outside production); no user name or password',
  })
  @Transform(trim)
  @IsString()
  @Length(10, WEBHOOK_URL_MAX_LENGTH)
  url: string;

  @ApiProperty({ enum: WEBHOOK_EVENTS, isArray: true, example: ['security.alert'] })
  @IsArray()
  @ArrayNotEmpty()
  @ArrayMaxSize(WEBHOOK_EVENTS.length)
  @ArrayUnique()
  @IsIn(WEBHOOK_EVENTS, { each: true, message: EVENTS_MESSAGE })
  events: SubscribableWebhookEvent[];
}

export class UpdateWebhookDto {
  @ApiPropertyOptional({ maxLength: WEBHOOK_URL_MAX_LENGTH })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @Length(10, WEBHOOK_URL_MAX_LENGTH)
  url?: string;

  @ApiPropertyOptional({ enum: WEBHOOK_EVENTS, isArray: true })
  @IsOptional()
  @IsArray()
  @ArrayNotEmpty()
  @ArrayMaxSize(WEBHOOK_EVENTS.length)
  @ArrayUnique()
  @IsIn(WEBHOOK_EVENTS, { each: true, message: EVENTS_MESSAGE })
  events?: SubscribableWebhookEvent[];

  @ApiPropertyOptional({ description: 'false stops deliveries; pending ones are marked failed' })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;
}

export class ListDeliveriesQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Transform(integer)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;
}

export class WebhookEndpointView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() url: string;
  @ApiProperty({ enum: WEBHOOK_EVENTS, isArray: true }) events: string[];
  @ApiProperty() enabled: boolean;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  secretRotatedAt: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description:
      'until when the secret replaced by the last rotation still signs beside the new one',
  })
  previousSecretValidUntil: string | null;
}

export class IssuedWebhookEndpointView extends WebhookEndpointView {
  @ApiProperty({
    description: 'the signing secret (`whsec_...`), shown this once',
    example: 'whsec_…',
  })
  secret: string;
}

export class WebhookEndpointListView {
  @ApiProperty({ type: [WebhookEndpointView] }) items: WebhookEndpointView[];
}

export const WEBHOOK_DELIVERY_STATUSES: readonly WebhookDeliveryStatus[] = [
  'pending',
  'delivered',
  'failed',
];

export class WebhookDeliveryView {
  @ApiProperty({ format: 'uuid', description: 'also sent as Parley-Delivery-Id' }) id: string;
  @ApiProperty({ format: 'uuid' }) endpointId: string;
  @ApiProperty() event: string;
  @ApiProperty({ enum: WEBHOOK_DELIVERY_STATUSES }) status: WebhookDeliveryStatus;
  @ApiProperty() attempts: number;
  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  nextAttemptAt: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  lastAttemptAt: string | null;
  @ApiProperty({ nullable: true, type: Number }) lastStatusCode: number | null;
  @ApiProperty({ nullable: true, type: String }) lastError: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  deliveredAt: string | null;
}

export class WebhookDeliveryListView {
  @ApiProperty({ type: [WebhookDeliveryView] }) items: WebhookDeliveryView[];
}

export class QueuedDeliveryView {
  @ApiProperty({ format: 'uuid' }) deliveryId: string;
  @ApiProperty({ enum: WEBHOOK_DELIVERY_STATUSES }) status: WebhookDeliveryStatus;
}
