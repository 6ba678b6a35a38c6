import { ContactEntity } from './contact.entity';
import { ConversationEntity } from './conversation.entity';
import { ContactView, ConversationView, MessageView } from './conversations.dto';
import { MessageEntity } from './message.entity';

export function toContactView(contact: ContactEntity): ContactView {
  return {
    id: contact.id,
    email: contact.email,
    name: contact.name,
    phone: contact.phone,
    createdAt: contact.createdAt.toISOString(),
  };
}

export function toConversationView(conversation: ConversationEntity): ConversationView {
  return {
    id: conversation.id,
    contactId: conversation.contactId,
    subject: conversation.subject,
    status: conversation.status,
    assigneeId: conversation.assigneeId,
    createdAt: conversation.createdAt.toISOString(),
    updatedAt: conversation.updatedAt.toISOString(),
  };
}

export function toMessageView(message: MessageEntity): MessageView {
  return {
    id: message.id,
    conversationId: message.conversationId,
    authorType: message.authorType,
    authorId: message.authorId,
    body: message.body,
    createdAt: new Date(message.createdAt).toISOString(),
  };
}
