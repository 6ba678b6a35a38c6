import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  IsEmail,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateIf,
} from 'class-validator';

import { CanonicalUuid } from '@parley/core';

import { CONVERSATION_STATUSES, ConversationStatus } from './conversation.entity';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);
const lower = ({ value }: { value: unknown }) =>
  typeof value === 'string' ? value.trim().toLowerCase() : value;
const integer = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;

export const MESSAGE_MAX_LENGTH = 4000;

export class CreateContactDto {
  @ApiProperty({ example: 'grace@example.com' })
  @Transform(lower)
  @IsString()
  @MaxLength(254)
  @IsEmail({}, { message: 'email must be an email address' })
  email: string;

  @ApiProperty({ example: 'Grace Hopper' })
  @Transform(trim)
  @IsString()
  @Length(1, 200)
  name: string;

  @ApiPropertyOptional({ example: '+44 20 7946 0958' })
  @IsOptional()
  @IsString()
  @Matches(/^\+?[0-9 ().-]{3,32}$/, { message: 'phone must be a phone number' })
  phone?: string;
}

export class CreateConversationDto {
  @ApiProperty({ format: 'uuid' })
  @CanonicalUuid()
  @IsUUID('all', { message: 'contactId must be a UUID' })
  contactId: string;

  @ApiPropertyOptional({ maxLength: 200 })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @Length(1, 200)
  subject?: string;
}

export class OpenWidgetConversationDto {
  @ApiPropertyOptional({ maxLength: 200 })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @Length(1, 200)
  subject?: string;
}

export class UpdateConversationDto {
  @ApiPropertyOptional({ enum: CONVERSATION_STATUSES })
  @IsOptional()
  @IsIn(CONVERSATION_STATUSES)
  status?: ConversationStatus;

  @ApiPropertyOptional({ format: 'uuid', nullable: true, type: String })
  @ValidateIf((_object, value) => value !== null && value !== undefined)
  @CanonicalUuid()
  @IsUUID('all', { message: 'assigneeId must be a UUID or null' })
  assigneeId?: string | null;
}

export class ListConversationsQuery {
  @ApiPropertyOptional({ enum: CONVERSATION_STATUSES })
  @IsOptional()
  @IsIn(CONVERSATION_STATUSES)
  status?: ConversationStatus;

  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Transform(integer)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;
}

export class ListMessagesQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 100 })
  @IsOptional()
  @Transform(integer)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number;

  @ApiPropertyOptional({ format: 'uuid', description: 'return messages after this message id' })
  @IsOptional()
  @CanonicalUuid()
  @IsUUID('all', { message: 'after must be a message id' })
  after?: string;
}

export class MessageBodyDto {
  @ApiProperty({ minLength: 1, maxLength: MESSAGE_MAX_LENGTH })
  @IsString()
  @Transform(trim)
  @Length(1, MESSAGE_MAX_LENGTH, { message: `body must be 1 to ${MESSAGE_MAX_LENGTH} characters` })
  body: string;
}

export class SendMessageDto extends MessageBodyDto {
  @CanonicalUuid()
  @IsUUID('all', { message: 'conversationId must be a UUID' })
  conversationId: string;

  @IsString()
  @Matches(/^[A-Za-z0-9._:-]{1,100}$/, {
    message: 'clientMessageId must be 1-100 letters, digits or ._:-',
  })
  clientMessageId: string;
}

export class JoinConversationDto {
  @CanonicalUuid()
  @IsUUID('all', { message: 'conversationId must be a UUID' })
  conversationId: string;

  @IsOptional()
  @CanonicalUuid()
  @IsUUID('all', { message: 'after must be a message id' })
  after?: string;
}

export class RefreshSocketDto {
  @IsString()
  @Length(20, 4096)
  token: string;
}

export class WidgetSessionDto {
  @ApiProperty({ example: 'pk_...' })
  @IsString()
  @Matches(/^pk_[A-Za-z0-9_-]{10,100}$/, { message: 'widgetKey is not a widget key' })
  widgetKey: string;
}

export class ContactView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ nullable: true, type: String }) email: string | null;
  @ApiProperty({ nullable: true, type: String }) name: string | null;
  @ApiProperty({ nullable: true, type: String }) phone: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiPropertyOptional({
    type: [String],
    description:
      'Confidential fields the caller may not read (a viewer reads none); they are null.',
  })
  redactedFields?: string[];
}

export class ConversationView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) contactId: string;
  @ApiProperty({ nullable: true, type: String }) subject: string | null;
  @ApiProperty({ enum: CONVERSATION_STATUSES }) status: ConversationStatus;
  @ApiProperty({ nullable: true, type: String, format: 'uuid' }) assigneeId: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;
}

export class ConversationListView {
  @ApiProperty({ type: [ConversationView] }) items: ConversationView[];
}

export class MessageView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) conversationId: string;
  @ApiProperty({ enum: ['contact', 'agent', 'assistant'] }) authorType:
    'contact' | 'agent' | 'assistant';
  @ApiProperty({ nullable: true, type: String, format: 'uuid' }) authorId: string | null;
  @ApiProperty() body: string;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
}

export class MessageListView {
  @ApiProperty({ type: [MessageView] }) items: MessageView[];
}

export class WidgetSessionView {
  @ApiProperty() visitorToken: string;
  @ApiProperty({ format: 'uuid' }) contactId: string;
  @ApiProperty() expiresIn: number;
}
