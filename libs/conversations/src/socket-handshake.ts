import { Injectable } from '@nestjs/common';
import type { Socket } from 'socket.io';

import { AuthErrorCode, AuthenticationGuard, SocketAuthState } from '@parley/auth';
import { ProblemException } from '@parley/core';
import { TenantTransactions } from '@parley/database';
import { BlockedAddresses } from '@parley/security';
import { OrganizationsService } from '@parley/tenancy';

import { ConversationsErrorCode } from './conversations.errors';

export type ChatSocket = Socket & {
  data: SocketAuthState & { timers?: NodeJS.Timeout[]; bucket?: { tokens: number; at: number } };
};

/**
 * Proves who opens a /chat socket: the token comes from the handshake's auth payload only, and a
 * widget visitor's browser origin must be on its organization's allow-list.
 */
@Injectable()
export class SocketHandshake {
  constructor(
    private readonly authentication: AuthenticationGuard,
    private readonly transactions: TenantTransactions,
    private readonly organizations: OrganizationsService,
    private readonly blocked: BlockedAddresses,
  ) {}

  async authenticate(socket: ChatSocket): Promise<void> {
    const query = socket.handshake.query ?? {};
    if ('token' in query || 'access_token' in query) {
      throw new ProblemException(400, AuthErrorCode.TokenInQuery, {
        detail: 'Send the token in the handshake auth payload, never in the query string.',
      });
    }
    const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
    if (typeof token !== 'string' || token.length < 20 || token.length > 4096) {
      throw new ProblemException(401, AuthErrorCode.InvalidToken, {
        detail: 'Send a valid token in the handshake auth payload as {token}.',
      });
    }
    const result = await this.authentication.authenticate(token, ['access', 'visitor']);
    await this.blocked.refuse(result.organizationId, socket.handshake.address);
    const origin = socket.handshake.headers.origin;
    if (result.actor.type === 'visitor' && typeof origin === 'string') {
      const allowed = await this.transactions.run(result.organizationId, async () => {
        const organization = await this.organizations.currentOrThrow();

        return organization.widgetAllowedOrigins.includes(origin.toLowerCase());
      });
      if (!allowed) {
        throw new ProblemException(403, ConversationsErrorCode.OriginNotAllowed, {
          detail: 'This origin may not use the widget.',
        });
      }
    }
    socket.data.actor = result.actor;
    socket.data.organizationId = result.organizationId;
    socket.data.expiresAt = result.expiresAt;
  }
}
