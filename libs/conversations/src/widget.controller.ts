import { Body, Controller, Headers, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiHeader, ApiTags } from '@nestjs/swagger';

import { AuditService } from '@parley/audit';
import { SessionsService, TokenService } from '@parley/auth';
import { Policy } from '@parley/authz';
import { RequestContext } from '@parley/core';
import { TenantTransactions } from '@parley/database';
import { BlockedAddresses, CredentialRoute } from '@parley/security';
import { OrganizationsService } from '@parley/tenancy';

import { ContactsService } from './contacts.service';
import { ConversationsErrorCode, ConversationsProblem } from './conversations.errors';
import { ConversationsService } from './conversations.service';
import {
  ConversationView,
  OpenWidgetConversationDto,
  WidgetSessionDto,
  WidgetSessionView,
} from './conversations.dto';
import { toConversationView } from './views';

/** The public face of the chat widget: visitor sessions and the visitor's own conversations. */
@ApiTags('widget')
@Controller('widget')
export class WidgetController {
  constructor(
    private readonly organizations: OrganizationsService,
    private readonly transactions: TenantTransactions,
    private readonly contacts: ContactsService,
    private readonly conversations: ConversationsService,
    private readonly sessions: SessionsService,
    private readonly tokens: TokenService,
    private readonly audit: AuditService,
    private readonly context: RequestContext,
    private readonly blocked: BlockedAddresses,
  ) {}

  @Post('sessions')
  @CredentialRoute()
  @HttpCode(201)
  @Policy.public()
  @ApiHeader({
    name: 'Origin',
    required: true,
    description: 'must be on the organization widget allow-list',
  })
  @ApiCreatedResponse({ type: WidgetSessionView })
  async startSession(
    @Body() input: WidgetSessionDto,
    @Headers('origin') origin?: string,
  ): Promise<WidgetSessionView> {
    const refusal = new ConversationsProblem(
      ConversationsErrorCode.OriginNotAllowed,
      'This widget key is not valid for this origin.',
      403,
    );
    const organizationId = await this.organizations.idByWidgetKey(input.widgetKey);
    if (!organizationId || !origin) {
      throw refusal;
    }
    await this.blocked.refuse(organizationId, this.context.ip);

    return this.transactions.run(organizationId, async () => {
      if (!(await this.originAllowed(origin))) {
        throw refusal;
      }
      const contact = await this.contacts.createAnonymous();
      const session = await this.sessions.start(
        { contactId: contact.id },
        this.tokens.visitorTokenTtl,
      );
      this.context.setActor({
        type: 'visitor',
        id: contact.id,
        contactId: contact.id,
        sessionId: session.id,
      });
      await this.audit.record(
        organizationId,
        'widget.session_created',
        { contactId: contact.id, origin },
        { type: 'contact', id: contact.id },
      );
      const visitorToken = await this.tokens.signVisitor({
        contactId: contact.id,
        organizationId,
        sessionId: session.id,
      });

      return { visitorToken, contactId: contact.id, expiresIn: this.tokens.visitorTokenTtl };
    });
  }

  @Post('conversations')
  @HttpCode(201)
  @Policy.visitor('create', 'Conversation')
  @ApiBearerAuth()
  @ApiCreatedResponse({ type: ConversationView })
  async openConversation(
    @Body() input: OpenWidgetConversationDto,
    @Headers('origin') origin?: string,
  ): Promise<ConversationView> {
    const actor = this.context.actor;
    if (actor?.type !== 'visitor') {
      throw new ConversationsProblem(
        ConversationsErrorCode.OriginNotAllowed,
        'Only a widget visitor opens conversations here.',
        403,
      );
    }
    if (origin !== undefined && !(await this.originAllowed(origin))) {
      throw new ConversationsProblem(
        ConversationsErrorCode.OriginNotAllowed,
        'This origin may not use the widget.',
        403,
      );
    }

    return toConversationView(await this.conversations.open(actor.contactId, input.subject));
  }

  /** True when the origin is on the current organization's widget allow-list. */
  private async originAllowed(origin: string): Promise<boolean> {
    const organization = await this.organizations.currentOrThrow();

    return organization.widgetAllowedOrigins.includes(origin.toLowerCase());
  }
}
