import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';

import { RequestContext } from '@parley/core';

import { BlockedAddresses } from './blocked-addresses';

interface SocketLike {
  data?: { organizationId?: string };
  handshake?: { address?: string };
}

/**
 * Refuses every request and socket event of an organization that comes from an address the
 * organization blocked. It runs as a global guard once the caller, and so the organization, is
 * known, before the tenant transaction, validation and the handler. Routes that learn the
 * organization only inside their handler (sign-in, refresh, widget sessions) and the Socket.IO
 * handshake call `BlockedAddresses.refuse` themselves as soon as they know it.
 */
@Injectable()
export class BlockedAddressGuard implements CanActivate {
  constructor(
    private readonly blocked: BlockedAddresses,
    private readonly context: RequestContext,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const { organizationId, address } = this.callerOf(context);
    if (organizationId) {
      await this.blocked.refuse(organizationId, address);
    }

    return true;
  }

  private callerOf(context: ExecutionContext): { organizationId?: string; address?: string } {
    if (context.getType() === 'ws') {
      const socket = context.switchToWs().getClient<SocketLike>();

      return { organizationId: socket.data?.organizationId, address: socket.handshake?.address };
    }
    const request = context.switchToHttp().getRequest<{ ip?: string }>();

    return { organizationId: this.context.organizationId, address: this.context.ip ?? request.ip };
  }
}
