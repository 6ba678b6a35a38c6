import { Actor, fieldMarksOf, isProtectedClass } from '@parley/core';

import { ContactEntity } from './contact.entity';
import { ConversationEntity } from './conversation.entity';
import { ContactView, ConversationView, MessageView } from './conversations.dto';
import { MessageEntity } from './message.entity';

/** The contact's confidential fields, from their classification marks. */
const CONFIDENTIAL_CONTACT_FIELDS = (['email', 'name', 'phone'] as const).filter((field) => {
  const mark = fieldMarksOf(ContactEntity).get(field);

  return mark !== undefined && isProtectedClass(mark.class);
});

/**
 * A contact as the caller may see it: a viewer reads conversations but none of a contact's
 * confidential fields, which come back as null and are named in `redactedFields`.
 */
export function toContactView(contact: ContactEntity, actor?: Actor): ContactView {
  const view: ContactView = {
    id: contact.id,
    email: contact.email,
    name: contact.name,
    phone: contact.phone,
    createdAt: contact.createdAt.toISOString(),
  };
  // An API key acts with its creator's current role, so a key of a viewer sees what a viewer sees.
  if ((actor?.type === 'user' || actor?.type === 'apiKey') && actor.role === 'viewer') {
    for (const field of CONFIDENTIAL_CONTACT_FIELDS) {
      view[field] = null;
    }
    view.redactedFields = [...CONFIDENTIAL_CONTACT_FIELDS];
  }

  return view;
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
