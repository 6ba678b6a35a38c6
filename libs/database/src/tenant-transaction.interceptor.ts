import {
  CallHandler,
  ExecutionContext,
  Injectable,
  NestInterceptor,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { TransactionHost } from '@nestjs-cls/transactional';
import { ClsService } from 'nestjs-cls';
import { Observable, firstValueFrom, from } from 'rxjs';

import { ParleyStore } from '@parley/core';

import { CommittedRefusal } from './committed-refusal';
import { TenantTransactions } from './tenant-transactions';

const TENANT_STATEMENTS_ONLY = 'parley:tenantStatementsOnly';

/**
 * Marks a handler whose database work is all tenant statements (`TenantTransactions.statement`,
 * each its own transaction) or cache reads: the request then opens no transaction around it,
 * which saves two round trips. Database access through `TenantTransactions.manager` in such a
 * handler throws, so a query that needs the request transaction cannot run without one.
 */
export const TenantStatementsOnly = () => SetMetadata(TENANT_STATEMENTS_ONLY, true);

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
    private readonly reflector: Reflector,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (
      this.reflector.get<boolean>(TENANT_STATEMENTS_ONLY, context.getHandler()) ||
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
