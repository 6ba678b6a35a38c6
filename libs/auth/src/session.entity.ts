import { Column, Entity, PrimaryColumn } from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

@ClassifiedTable({
  purpose: 'Signed-in sessions, so each token can be checked, listed and ended.',
  retention: 'Until the session ends by logout, idle time, age or a security event.',
})
@Entity({ name: 'auth_sessions' })
export class SessionEntity {
  @Classified('internal')
  @PrimaryColumn('uuid')
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('internal')
  @Column({ name: 'subject_type', type: 'text' })
  subjectType: 'user' | 'visitor';

  @Classified('internal')
  @Column({ name: 'user_id', type: 'uuid', nullable: true })
  userId: string | null;

  @Classified('internal')
  @Column({ name: 'contact_id', type: 'uuid', nullable: true })
  contactId: string | null;

  @Classified('internal')
  @Column({ type: 'text', nullable: true })
  ip: string | null;

  @Classified('internal')
  @Column({ name: 'user_agent', type: 'text', nullable: true })
  userAgent: string | null;

  @Classified('internal')
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Classified('internal')
  @Column({ name: 'last_seen_at', type: 'timestamptz' })
  lastSeenAt: Date;

  @Classified('internal')
  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt: Date;

  @Classified('internal')
  @Column({ name: 'ended_at', type: 'timestamptz', nullable: true })
  endedAt: Date | null;

  @Classified('internal')
  @Column({ name: 'end_reason', type: 'text', nullable: true })
  endReason: string | null;

  /** Signed in without MFA that the organization requires: limited to enrolling until it does. */
  @Classified('internal')
  @Column({ name: 'mfa_pending', type: 'boolean', default: false })
  mfaPending: boolean;
}
