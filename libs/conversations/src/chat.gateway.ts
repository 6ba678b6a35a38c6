import {
  ArgumentsHost,
  CallHandler,
  Catch,
  ExceptionFilter,
  ExecutionContext,
  Inject,
  Injectable,
  Logger,
  NestInterceptor,
  OnModuleDestroy,
  UseFilters,
  UseInterceptors,
} from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  OnGatewayConnection,
  OnGatewayDisconnect,
  OnGatewayInit,
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import { ClsService } from 'nestjs-cls';
import { Observable, from } from 'rxjs';
import type { Namespace, Socket } from 'socket.io';

import { AuthErrorCode, AuthenticationGuard, SessionsService } from '@parley/auth';
import { Policy } from '@parley/authz';
import {
  APP_CONFIG,
  AppConfig,
  Clock,
  CommonErrorCode,
  ParleyStore,
  ProblemException,
  Metrics,
  safeError,
  toProblem,
  validatePayload,
} from '@parley/core';
import { TenantStatementsOnly } from '@parley/database';

import { JoinConversationDto, RefreshSocketDto, SendMessageDto } from './conversations.dto';
import { MessagesService } from './messages.service';
import { MessageBroadcaster, conversationRoom } from './message-broadcaster';
import { ChatSocket, SocketHandshake } from './socket-handshake';

/** Messages a join returns at most; a client asks again with `after` for more. */
const JOIN_HISTORY_LIMIT = 100;

/** The events this gateway answers; any other gets a refused ack instead of silence. */
const EVENTS = new Set(['conversation:join', 'message:send', 'auth:refresh']);

/** How long before expiry a socket is told to refresh its token. */
const EXPIRY_WARNING_MS = 60_000;

function sessionRoom(sessionId: string): string {
  return `session:${sessionId}`;
}

/** Every refusal on the socket is an ack with a stable code, never an unanswered event. */
@Catch()
export class SocketProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('ChatGateway');

  catch(error: unknown, host: ArgumentsHost): void {
    const [, , ack] = host.getArgs<[Socket, unknown, unknown]>();
    const problem = toProblem(error, undefined);
    if (problem.status >= 500) {
      this.logger.error({ err: safeError(error) }, 'socket event failed');
    }
    if (typeof ack === 'function') {
      ack({ ok: false, error: { code: problem.code, message: problem.detail } });
    }
  }
}

/**
 * A token bucket per socket (SOCKET_EVENTS_PER_SECOND, bursts of SOCKET_EVENT_BURST): a flood
 * from one client is refused event by event with an ack. It runs in the gateway's interceptor,
 * so after the guards, whose session check is cached for SESSION_CACHE_MS.
 */
function takeEventToken(socket: ChatSocket, perSecond: number, burst: number): boolean {
  const now = Date.now();
  const bucket = socket.data.bucket ?? { tokens: burst, at: now };
  bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
  bucket.at = now;
  socket.data.bucket = bucket;
  if (bucket.tokens < 1) {
    return false;
  }
  bucket.tokens -= 1;

  return true;
}

/** Gives each socket event its own request context, filled from what the handshake proved. */
@Injectable()
export class SocketContextInterceptor implements NestInterceptor {
  constructor(
    private readonly cls: ClsService<ParleyStore>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const socket = context.switchToWs().getClient<ChatSocket>();
    const { socketEventsPerSecond, socketEventBurst } = this.config;
    if (!takeEventToken(socket, socketEventsPerSecond, socketEventBurst)) {
      throw new ProblemException(429, CommonErrorCode.RateLimited, {
        detail: `This socket sends more than ${socketEventsPerSecond} events a second; slow down.`,
      });
    }

    return from(
      this.cls.run(
        () =>
          new Promise((resolve, reject) => {
            this.cls.set('organizationId', socket.data.organizationId);
            this.cls.set('actor', socket.data.actor);
            this.cls.set('ip', socket.handshake.address);
            next
              .handle()
              .subscribe({ next: resolve, error: reject, complete: () => resolve(undefined) });
          }),
      ),
    );
  }
}

@WebSocketGateway({ namespace: '/chat', cors: { origin: true, credentials: false } })
@UseFilters(SocketProblemFilter)
@UseInterceptors(SocketContextInterceptor)
export class ChatGateway
  implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect, OnModuleDestroy
{
  private readonly logger = new Logger(ChatGateway.name);
  private namespace: Namespace;
  private sweep: NodeJS.Timeout | undefined;

  constructor(
    private readonly authentication: AuthenticationGuard,
    private readonly sessions: SessionsService,
    private readonly messages: MessagesService,
    private readonly broadcaster: MessageBroadcaster,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly handshake: SocketHandshake,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  afterInit(namespace: Namespace): void {
    this.namespace = namespace;
    this.broadcaster.attach(namespace);
    namespace.use((socket, next) => {
      this.handshake.authenticate(socket as ChatSocket).then(
        () => next(),
        (error: unknown) => {
          const problem = toProblem(error, undefined);
          this.metrics.authFailures.inc({ code: problem.code });
          const refusal = new Error(problem.detail) as Error & { data: unknown };
          refusal.data = { code: problem.code };
          next(refusal);
        },
      );
    });
    this.sessions.onEnded((sessionId) => {
      namespace.in(sessionRoom(sessionId)).disconnectSockets(true);
    });
    // Sessions also end without an announcement, by idle time or age: a socket that only listens
    // would keep receiving messages until its token expired, so each is checked on a schedule.
    this.sweep = setInterval(
      () => void this.disconnectEndedSessions(),
      this.config.sessionSweepSeconds * 1000,
    );
    this.sweep.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sweep);
  }

  private async disconnectEndedSessions(): Promise<void> {
    for (const socket of this.namespace.sockets.values() as IterableIterator<ChatSocket>) {
      const { actor, organizationId } = socket.data;
      if (!actor || actor.type === 'system' || actor.type === 'apiKey' || !organizationId) {
        continue;
      }
      const session = await this.sessions
        .findActive(organizationId, actor.sessionId, { recordUse: false })
        .catch(() => 'unknown' as const);
      if (session === undefined) {
        socket.emit('auth:expired', { reason: 'session_ended' });
        socket.disconnect(true);
      }
    }
  }

  handleConnection(socket: ChatSocket): void {
    if (!socket.data.actor) {
      socket.disconnect(true);

      return;
    }
    void socket.join(sessionRoom(socket.data.actor.sessionId));
    this.scheduleExpiry(socket);
    this.metrics.socketConnections.inc();
    socket.onAny((event: unknown, ...args: unknown[]) => {
      const ack = args[args.length - 1];
      if (typeof event === 'string' && EVENTS.has(event)) {
        return;
      }
      if (typeof ack === 'function') {
        (ack as (answer: unknown) => void)({
          ok: false,
          error: {
            code: CommonErrorCode.UnknownEvent,
            message: `This namespace has no event ${JSON.stringify(String(event).slice(0, 64))}.`,
          },
        });
      }
    });
  }

  handleDisconnect(socket: ChatSocket): void {
    this.clearTimers(socket);
    if (socket.data.actor) {
      this.metrics.socketConnections.dec();
    }
  }

  @SubscribeMessage('conversation:join')
  @Policy.participant('read', 'Conversation')
  @TenantStatementsOnly()
  async join(
    @ConnectedSocket() socket: ChatSocket,
    @MessageBody() payload: unknown,
  ): Promise<unknown> {
    const input = await validatePayload(JoinConversationDto, payload);
    // Joining answers with the history too (after `after`, when given): a widget visitor has no
    // other way to read its conversation, and a reconnecting client catches up from here.
    const history = await this.messages.list(input.conversationId, JOIN_HISTORY_LIMIT, input.after);
    await socket.join(conversationRoom(input.conversationId));

    return { ok: true, conversationId: input.conversationId, messages: history };
  }

  @SubscribeMessage('message:send')
  @Policy.participant('create', 'Message')
  @TenantStatementsOnly()
  async send(
    @ConnectedSocket() _socket: ChatSocket,
    @MessageBody() payload: unknown,
  ): Promise<unknown> {
    const input = await validatePayload(SendMessageDto, payload);
    const result = await this.messages.send(
      input.conversationId,
      input.body,
      input.clientMessageId,
    );

    return { ok: true, message: result.message, duplicate: result.duplicate };
  }

  @SubscribeMessage('auth:refresh')
  @Policy.participant('read', 'Conversation')
  async refresh(
    @ConnectedSocket() socket: ChatSocket,
    @MessageBody() payload: unknown,
  ): Promise<unknown> {
    const input = await validatePayload(RefreshSocketDto, payload);
    const current = socket.data.actor;
    const next = await this.authentication.authenticate(
      input.token,
      current?.type === 'visitor' ? ['visitor'] : ['access'],
    );
    if (
      !current ||
      next.actor.type !== current.type ||
      next.actor.id !== current.id ||
      next.organizationId !== socket.data.organizationId
    ) {
      throw new ProblemException(401, AuthErrorCode.InvalidToken, {
        detail: 'The new token must belong to the same caller.',
      });
    }
    if (
      current.type !== 'system' &&
      current.type !== 'apiKey' &&
      next.actor.sessionId !== current.sessionId
    ) {
      await socket.leave(sessionRoom(current.sessionId));
      await socket.join(sessionRoom(next.actor.sessionId));
    }
    socket.data.actor = next.actor;
    socket.data.expiresAt = next.expiresAt;
    this.scheduleExpiry(socket);

    return { ok: true, expiresAt: new Date(next.expiresAt * 1000).toISOString() };
  }

  /** Warns a socket before its token expires and cuts it at expiry unless it refreshed. */
  private scheduleExpiry(socket: ChatSocket): void {
    this.clearTimers(socket);
    const expiresAt = (socket.data.expiresAt ?? 0) * 1000;
    const remaining = expiresAt - this.clock.nowMs();
    const warnIn = Math.max(0, remaining - EXPIRY_WARNING_MS);
    socket.data.timers = [
      setTimeout(
        () => socket.emit('auth:expiring', { expiresAt: new Date(expiresAt).toISOString() }),
        warnIn,
      ),
      setTimeout(
        () => {
          socket.emit('auth:expired', { reason: 'token_expired' });
          this.logger.debug({ socket: socket.id }, 'socket token expired; disconnecting');
          socket.disconnect(true);
        },
        Math.max(0, remaining),
      ),
    ];
  }

  private clearTimers(socket: ChatSocket): void {
    for (const timer of socket.data.timers ?? []) {
      clearTimeout(timer);
    }
    socket.data.timers = [];
  }
}
