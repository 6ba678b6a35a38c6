import {
  Column,
  CreateDateColumn,
  Entity,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';

import { Audited } from '@parley/audit';
import { Classified, ClassifiedTable, Role } from '@parley/core';

@Audited('user')
@ClassifiedTable({
  purpose: 'Members of the support team: who signs in and with which role.',
  retention: 'Until the member is removed.',
})
@Entity({ name: 'users' })
export class UserEntity {
  @Classified('internal')
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('confidential', { blindIndex: 'emailIndex' })
  @Column({ type: 'text' })
  email: string;

  @Classified('confidential', {
    protection: 'blind-index',
    purpose: 'Find a member by email at sign-in without storing the email in clear.',
  })
  @Column({ name: 'email_index', type: 'bytea' })
  emailIndex: Buffer;

  @Classified('confidential')
  @Column({ type: 'text' })
  name: string;

  @Classified('internal')
  @Column({ type: 'text' })
  role: Role;

  @Classified('restricted', { protection: 'hashed' })
  @Column({ name: 'password_hash', type: 'text', select: false })
  passwordHash: string;

  @Classified('internal')
  @Column({ name: 'last_login_at', type: 'timestamptz', nullable: true })
  lastLoginAt: Date | null;

  @Classified('internal')
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Classified('internal')
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
