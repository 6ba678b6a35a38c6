import { Injectable, OnModuleInit } from '@nestjs/common';
import { ClsService } from 'nestjs-cls';

import { AuditService, ObservedAuditEntry } from '@parley/audit';
import { TenantTransactions } from '@parley/database';

import { LoginThrottle } from '../login-throttle';

import { Detection } from './detection.service';
import { AuditSignal, auditSignals, loginFailureObservations } from './signals';

/**
 * Feeds detection from what is already recorded: every refused sign-in the login throttle
 * counts, and the audit entries of token reuse and admin changes once they have committed.
 */
@Injectable()
export class TrailSignals implements OnModuleInit {
  constructor(
    private readonly detection: Detection,
    private readonly audit: AuditService,
    private readonly loginThrottle: LoginThrottle,
    private readonly transactions: TenantTransactions,
    private readonly cls: ClsService,
  ) {}

  onModuleInit(): void {
    this.loginThrottle.observeFailures((failure) => {
      for (const observation of loginFailureObservations(failure)) {
        this.detection.observe(observation);
      }
    });
    this.audit.observe((entry) => this.onAuditEntry(entry));
  }

  private onAuditEntry(entry: ObservedAuditEntry): void {
    for (const signal of auditSignals(entry)) {
      if (signal.whenAdmin) {
        this.detection.track(this.observeIfAdmin(signal, signal.whenAdmin.userId));
      } else {
        this.detection.observe(signal.observation);
      }
    }
  }

  /**
   * An MFA change or a new member counts only for an admin, whose role the entry does not carry:
   * one read of the member's own role (rare events, never on a request's path).
   */
  private async observeIfAdmin(signal: AuditSignal, userId: string): Promise<void> {
    const organizationId = signal.observation.organizationId as string;
    const rows: { role: string }[] = await this.cls.runWith({}, () =>
      this.transactions.run(organizationId, (manager) =>
        manager.query('select role from users where id = $1', [userId]),
      ),
    );
    if (rows[0]?.role === 'admin') {
      await this.detection.count(signal.observation);
    }
  }
}
