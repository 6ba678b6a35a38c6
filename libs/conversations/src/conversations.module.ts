import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { TenancyModule } from '@parley/tenancy';

import { ChatGateway, SocketContextInterceptor } from './chat.gateway';
import { ContactEntity } from './contact.entity';
import { ContactsService } from './contacts.service';
import { ConversationEntity } from './conversation.entity';
import { ContactsController, ConversationsController } from './conversations.controller';
import { ConversationsService } from './conversations.service';
import { MessageEntity } from './message.entity';
import { MessageBroadcaster } from './message-broadcaster';
import { MessageWriter } from './message-writer';
import { MessagesService } from './messages.service';
import { SocketHandshake } from './socket-handshake';
import { WidgetController } from './widget.controller';

@Module({
  imports: [
    TypeOrmModule.forFeature([ContactEntity, ConversationEntity, MessageEntity]),
    TenancyModule,
  ],
  controllers: [ContactsController, ConversationsController, WidgetController],
  providers: [
    ContactsService,
    ConversationsService,
    MessagesService,
    MessageBroadcaster,
    MessageWriter,
    ChatGateway,
    SocketContextInterceptor,
    SocketHandshake,
  ],
  exports: [ContactsService, ConversationsService, MessagesService],
})
export class ConversationsModule {}
