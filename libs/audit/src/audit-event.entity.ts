import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

@ClassifiedTable({
  purpose: 'The audit trail: who did what, when, to which record (field names, never values).',
  retention: 'Kept for the audit retention period; never changed.',
})
@Entity({ name: 'audit_events' })
export class AuditEventEntity {
  @Classified('internal')
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('internal')
  @Column({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt: Date;

  @Classified('internal')
  @Column({ name: 'actor_type', type: 'text' })
  actorType: 'user' | 'visitor' | 'system' | 'anonymous' | 'api_key';

  @Classified('internal')
  @Column({ name: 'actor_id', type: 'text', nullable: true })
  actorId: string | null;

  @Classified('internal')
  @Column({ type: 'text' })
  action: string;

  @Classified('internal')
  @Column({ name: 'target_type', type: 'text', nullable: true })
  targetType: string | null;

  @Classified('internal')
  @Column({ name: 'target_id', type: 'text', nullable: true })
  targetId: string | null;

  @Classified('internal')
  @Column({ name: 'request_id', type: 'text', nullable: true })
  requestId: string | null;

  @Classified('internal')
  @Column({ type: 'text', nullable: true })
  ip: string | null;

  @Classified('internal')
  @Column({ type: 'text', array: true })
  changes: string[];

  /** The just-in-time elevation the actor was acting under, if any. */
  @Classified('internal')
  @Column({ name: 'elevation_id', type: 'uuid', nullable: true })
  elevationId: string | null;

  @Classified('internal')
  @Column({ type: 'jsonb' })
  metadata: Record<string, unknown>;
}
