import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed';

/**
 * One delivery of one event to one endpoint, and its queue entry: inserted in the transaction
 * that causes it, claimed by the worker of any instance with SKIP LOCKED, retried with back-off.
 * Its id is stable across attempts, so a receiver can drop a repeat.
 */
@ClassifiedTable({
  purpose: 'The queue and history of webhook deliveries: what was sent where, and how it went.',
  retention: 'Until its endpoint or the organization is deleted.',
})
@Entity({ name: 'webhook_deliveries' })
export class WebhookDeliveryEntity {
  @Classified('internal')
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('internal')
  @Column({ name: 'endpoint_id', type: 'uuid' })
  endpointId: string;

  @Classified('internal')
  @Column({ type: 'text' })
  event: string;

  @Classified('internal', {
    purpose:
      'What the delivery says: ids, counts and rule names; confidential values are removed before it is stored.',
  })
  @Column({ type: 'jsonb' })
  payload: Record<string, unknown>;

  @Classified('internal')
  @Column({ type: 'text' })
  status: WebhookDeliveryStatus;

  @Classified('internal')
  @Column({ type: 'integer' })
  attempts: number;

  @Classified('internal')
  @Column({ name: 'next_attempt_at', type: 'timestamptz', nullable: true })
  nextAttemptAt: Date | null;

  @Classified('internal')
  @Column({ name: 'last_attempt_at', type: 'timestamptz', nullable: true })
  lastAttemptAt: Date | null;

  @Classified('internal')
  @Column({ name: 'last_status_code', type: 'integer', nullable: true })
  lastStatusCode: number | null;

  @Classified('internal', {
    purpose: 'Why the last attempt failed, in a few words of ours; never the response body.',
  })
  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError: string | null;

  @Classified('internal')
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Classified('internal')
  @Column({ name: 'delivered_at', type: 'timestamptz', nullable: true })
  deliveredAt: Date | null;
}
