export * from './contact.entity';
export * from './conversation.entity';
export * from './conversations.dto';
export * from './conversations.module';
export * from './message.entity';
export * from './message-writer';
