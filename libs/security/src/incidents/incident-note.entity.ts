import { Column, Entity, PrimaryColumn } from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

/** A note an admin wrote on an incident. Notes are never changed or deleted (no grant for it). */
@ClassifiedTable({
  purpose: 'Notes staff write while handling a security incident.',
  retention: 'Kept with the incident.',
})
@Entity({ name: 'incident_notes' })
export class IncidentNoteEntity {
  @Classified('internal')
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('internal')
  @Column({ name: 'incident_id', type: 'uuid' })
  incidentId: string;

  @Classified('internal')
  @Column({ name: 'author_id', type: 'uuid', nullable: true })
  authorId: string | null;

  @Classified('internal')
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Classified('confidential', { purpose: 'What staff wrote; free text that may name people.' })
  @Column({ type: 'text' })
  body: string;
}
