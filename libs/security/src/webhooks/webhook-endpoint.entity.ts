import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

/**
 * An organization's webhook endpoint. The signing secret, and the previous one while a
 * rotation's overlap lasts, are sealed under the organization's data key; the service writes
 * them sealed by SQL and opens them only to sign a delivery. Not @Audited: creation, changes,
 * rotation and deletion are explicit audit events, and no change entry names a secret.
 */
@ClassifiedTable({
  purpose: "Where an organization's webhook deliveries go, and the secrets that sign them.",
  retention: 'Until an admin deletes the endpoint or the organization is deleted.',
})
@Entity({ name: 'webhook_endpoints' })
export class WebhookEndpointEntity {
  @Classified('internal')
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('internal', {
    purpose: "The receiver's URL; user names and passwords in it are refused.",
  })
  @Column({ type: 'text' })
  url: string;

  @Classified('internal')
  @Column({ type: 'text', array: true })
  events: string[];

  @Classified('internal')
  @Column({ type: 'boolean' })
  enabled: boolean;

  @Classified('restricted', { purpose: 'Signs every delivery (HMAC-SHA256).' })
  @Column({ type: 'text', select: false })
  secret: string;

  @Classified('restricted', {
    purpose: 'The secret a rotation replaced; it still signs beside the new one until it expires.',
  })
  @Column({ name: 'previous_secret', type: 'text', nullable: true, select: false })
  previousSecret: string | null;

  @Classified('internal')
  @Column({ name: 'previous_secret_expires_at', type: 'timestamptz', nullable: true })
  previousSecretExpiresAt: Date | null;

  @Classified('internal')
  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy: string | null;

  @Classified('internal')
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Classified('internal')
  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;

  @Classified('internal')
  @Column({ name: 'secret_rotated_at', type: 'timestamptz', nullable: true })
  secretRotatedAt: Date | null;
}
