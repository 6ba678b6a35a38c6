import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

const bigintAsNumber = {
  to: (value: number | undefined) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};

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

  // The chain: set by parley_audit_chain just after the entry commits, never by the server.
  @Classified('internal', { purpose: "The entry's place in its organization's hash chain." })
  @Column({ type: 'bigint', insert: false, update: false, transformer: bigintAsNumber })
  seq: number;

  @Classified('internal', { purpose: 'SHA-256 of the entry before, linking the chain.' })
  @Column({ name: 'prev_hash', type: 'bytea', insert: false, update: false, select: false })
  prevHash: Buffer;

  @Classified('internal', {
    purpose: 'The order entries were appended in, which the chain follows.',
  })
  @Column({
    name: 'append_id',
    type: 'bigint',
    insert: false,
    update: false,
    select: false,
    transformer: bigintAsNumber,
  })
  appendId: number;

  @Classified('internal', { purpose: 'SHA-256 of the previous hash and this entry.' })
  @Column({ type: 'bytea', insert: false, update: false, select: false })
  hash: Buffer;
}
