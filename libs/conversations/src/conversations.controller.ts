import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';

import { Policy } from '@parley/authz';
import { RequestContext } from '@parley/core';
import { TenantStatementsOnly } from '@parley/database';
import { IdParam } from '@parley/tenancy';

import { ContactsService } from './contacts.service';
import { ConversationsService } from './conversations.service';
import {
  ContactView,
  ConversationListView,
  ConversationView,
  CreateContactDto,
  CreateConversationDto,
  ListConversationsQuery,
  ListMessagesQuery,
  MessageBodyDto,
  MessageListView,
  MessageView,
  UpdateConversationDto,
} from './conversations.dto';
import { MessagesService } from './messages.service';
import { toContactView, toConversationView } from './views';

@ApiTags('contacts')
@ApiBearerAuth()
@Controller('contacts')
export class ContactsController {
  constructor(
    private readonly contacts: ContactsService,
    private readonly context: RequestContext,
  ) {}

  @Post()
  @HttpCode(201)
  @Policy.can('create', 'Contact')
  @ApiCreatedResponse({ type: ContactView })
  async create(@Body() input: CreateContactDto): Promise<ContactView> {
    return toContactView(await this.contacts.create(input), this.context.actor);
  }

  @Get(':id')
  @Policy.can('read', 'Contact')
  @ApiOkResponse({ type: ContactView })
  async show(@Param() params: IdParam): Promise<ContactView> {
    return toContactView(await this.contacts.findOrThrow(params.id), this.context.actor);
  }

  /**
   * Erases a contact: their data key is destroyed first (crypto-shredding), so everything sealed
   * under it, in this database and in any backup of it, can no longer be read; then the contact,
   * their conversations and messages are deleted.
   */
  @Delete(':id')
  @HttpCode(204)
  @Policy.can('delete', 'Contact')
  @ApiNoContentResponse()
  async erase(@Param() params: IdParam): Promise<void> {
    await this.contacts.erase(params.id);
  }
}

@ApiTags('conversations')
@ApiBearerAuth()
@Controller('conversations')
export class ConversationsController {
  constructor(
    private readonly conversations: ConversationsService,
    private readonly messages: MessagesService,
  ) {}

  @Post()
  @HttpCode(201)
  @Policy.can('create', 'Conversation')
  @ApiCreatedResponse({ type: ConversationView })
  async open(@Body() input: CreateConversationDto): Promise<ConversationView> {
    return toConversationView(await this.conversations.open(input.contactId, input.subject));
  }

  @Get()
  @Policy.can('read', 'Conversation')
  @ApiOkResponse({ type: ConversationListView })
  async list(@Query() query: ListConversationsQuery): Promise<ConversationListView> {
    return { items: (await this.conversations.list(query)).map(toConversationView) };
  }

  @Get(':id')
  @Policy.can('read', 'Conversation')
  @ApiOkResponse({ type: ConversationView })
  async show(@Param() params: IdParam): Promise<ConversationView> {
    return toConversationView(await this.conversations.findReadableOrThrow(params.id));
  }

  @Patch(':id')
  @Policy.can('update', 'Conversation')
  @ApiOkResponse({ type: ConversationView })
  async update(
    @Param() params: IdParam,
    @Body() changes: UpdateConversationDto,
  ): Promise<ConversationView> {
    return toConversationView(await this.conversations.update(params.id, changes));
  }

  @Post(':id/messages')
  @HttpCode(201)
  @Policy.can('create', 'Message')
  @TenantStatementsOnly()
  @ApiCreatedResponse({ type: MessageView })
  async send(@Param() params: IdParam, @Body() input: MessageBodyDto): Promise<MessageView> {
    return (await this.messages.send(params.id, input.body)).message;
  }

  @Get(':id/messages')
  @Policy.can('read', 'Message')
  @TenantStatementsOnly()
  @ApiOkResponse({ type: MessageListView })
  async messagesOf(
    @Param() params: IdParam,
    @Query() query: ListMessagesQuery,
  ): Promise<MessageListView> {
    return { items: await this.messages.list(params.id, query.limit ?? 100, query.after) };
  }
}
