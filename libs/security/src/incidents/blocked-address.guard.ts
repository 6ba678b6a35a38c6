import { CanActivate, ExecutionContext, HttpStatus, Injectable } from '@nestjs/common';

import { RequestContext } from '@parley/core';

import { BlockedAddresses } from './blocked-addresses';
import { IncidentsErrorCode, IncidentsProblem } from './incidents.errors';

interface SocketLike {
  data?: { organizationId?: string };
  handshake?: { address?: string };
}

/**
 * Refuses every request and socket event of an organization that comes from an address the
 * organization blocked. It runs as a global guard once the caller, and so the organization, is
 * known, before the tenant transaction, validation and the handler; routes that learn the
 * organization only inside their handler (sign-in, refresh, widget sessions) are not refused,
 * but every later call with what they hand out is. Known shortcoming: the Socket.IO handshake
 * is not checked, only each event after it, so a blocked address can still open a socket.
 */
@Injectable()
export class BlockedAddressGuard implements CanActivate {
  constructor(
    private readonly blocked: BlockedAddresses,
    private readonly context: RequestContext,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const { organizationId, address } = this.callerOf(context);
    if (organizationId && address && (await this.blocked.isBlocked(organizationId, address))) {
      throw new IncidentsProblem(
        IncidentsErrorCode.AddressBlocked,
        'Your organization has blocked requests from this address.',
        HttpStatus.FORBIDDEN,
      );
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
