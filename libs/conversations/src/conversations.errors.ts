import { HttpStatus } from '@nestjs/common';

import { ProblemException } from '@parley/core';

export enum ConversationsErrorCode {
  ContactEmailTaken = 'contact_email_taken',
  AssigneeNotMember = 'assignee_not_member',
  AssigneeCannotAnswer = 'assignee_cannot_answer',
  AssignOthersForbidden = 'assign_others_forbidden',
  OriginNotAllowed = 'origin_not_allowed',
  ConversationBusy = 'conversation_busy',
  MessageCursorUnknown = 'message_cursor_unknown',
}

export class ConversationsProblem extends ProblemException {
  constructor(code: ConversationsErrorCode, detail: string, status: number = HttpStatus.CONFLICT) {
    super(status, code, { detail });
  }
}
