import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

import { Audited } from '@parley/audit';
import { Role } from '@parley/core';

@Audited('organization')
@Entity({ name: 'organizations' })
export class OrganizationEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ type: 'text' })
  slug: string;

  @Column({ type: 'text' })
  name: string;

  @Column({ name: 'widget_key', type: 'text' })
  widgetKey: string;

  @Column({ name: 'widget_allowed_origins', type: 'text', array: true })
  widgetAllowedOrigins: string[];

  @Column({ name: 'mfa_required_roles', type: 'text', array: true })
  mfaRequiredRoles: Role[];

  @Column({ name: 'password_min_length', type: 'integer' })
  passwordMinLength: number;

  @Column({ name: 'session_idle_minutes', type: 'integer' })
  sessionIdleMinutes: number;

  @Column({ name: 'session_absolute_hours', type: 'integer' })
  sessionAbsoluteHours: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
