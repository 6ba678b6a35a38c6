import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

import { Audited } from '@parley/audit';
import { Classified, ClassifiedTable, Role } from '@parley/core';

@Audited('organization')
@ClassifiedTable({
  purpose: 'The organization that runs its support on Parley, and its security policy.',
  retention: 'While the organization has an account.',
})
@Entity({ name: 'organizations' })
export class OrganizationEntity {
  @Classified('internal')
  @PrimaryColumn('uuid')
  id: string;

  @Classified('public')
  @Column({ type: 'text' })
  slug: string;

  @Classified('internal')
  @Column({ type: 'text' })
  name: string;

  @Classified('public')
  @Column({ name: 'widget_key', type: 'text' })
  widgetKey: string;

  @Classified('public')
  @Column({ name: 'widget_allowed_origins', type: 'text', array: true })
  widgetAllowedOrigins: string[];

  @Classified('internal')
  @Column({ name: 'mfa_required_roles', type: 'text', array: true })
  mfaRequiredRoles: Role[];

  @Classified('internal')
  @Column({ name: 'password_min_length', type: 'integer' })
  passwordMinLength: number;

  @Classified('internal')
  @Column({ name: 'session_idle_minutes', type: 'integer' })
  sessionIdleMinutes: number;

  @Classified('internal')
  @Column({ name: 'session_absolute_hours', type: 'integer' })
  sessionAbsoluteHours: number;

  @Classified('internal')
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Classified('internal')
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
