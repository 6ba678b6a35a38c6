import { Injectable } from '@nestjs/common';
import type { Namespace } from 'socket.io';

import { MessageView } from './conversations.dto';

export function conversationRoom(conversationId: string): string {
  return `conversation:${conversationId}`;
}

/** Fans stored messages out to the sockets in their conversation's room, on every instance. */
@Injectable()
export class MessageBroadcaster {
  private namespace: Namespace | undefined;

  attach(namespace: Namespace): void {
    this.namespace = namespace;
  }

  publish(message: MessageView): void {
    this.namespace?.to(conversationRoom(message.conversationId)).emit('message:new', message);
  }
}
