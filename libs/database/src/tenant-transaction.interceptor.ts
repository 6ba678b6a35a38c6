import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import { ClsService } from 'nestjs-cls';
import { Observable, firstValueFrom, from } from 'rxjs';

import { ParleyStore } from '@parley/core';

import { CommittedRefusal } from './committed-refusal';
import { TenantTransactions } from './tenant-transactions';

/**
 * Wraps each authenticated HTTP request and socket event in one transaction for the caller's
 * organization. Requests with no organization yet (signup, login, widget sessions) pass through
 * and open their own once they know it.
 */
@Injectable()
export class TenantTransactionInterceptor implements NestInterceptor {
  constructor(
    private readonly txHost: TransactionHost,
    private readonly cls: ClsService<ParleyStore>,
    private readonly transactions: TenantTransactions,
  ) {}

  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (
      !this.cls.isActive() ||
      !this.cls.get('organizationId') ||
      this.txHost.isTransactionActive()
    ) {
      return next.handle();
    }

    return from(
      this.transactions
        .runThenFlush(() =>
          this.txHost.withTransaction(() =>
            firstValueFrom(next.handle(), { defaultValue: undefined }).catch(CommittedRefusal.keep),
          ),
        )
        .then(CommittedRefusal.raise),
    );
  }
}
