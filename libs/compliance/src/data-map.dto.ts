import { ApiProperty } from '@nestjs/swagger';

export class DataMapFieldView {
  @ApiProperty({ description: 'column name' }) name: string;
  @ApiProperty({ enum: ['public', 'internal', 'confidential', 'restricted'] }) class: string;
  @ApiProperty() purpose: string;
  @ApiProperty() retention: string;
  @ApiProperty({ description: 'sealed at rest with envelope encryption' }) encrypted: boolean;
  @ApiProperty({ enum: ['none', 'sealed', 'hashed', 'blind-index', 'kek-sealed'] })
  protection: string;
  @ApiProperty({
    nullable: true,
    type: String,
    enum: ['organization', 'contact'],
    description: "whose key seals it: a contact's own key is destroyed when the contact is erased",
  })
  keyScope: string | null;
}

export class DataMapEntityView {
  @ApiProperty({ description: 'schema.table' }) entity: string;
  @ApiProperty() purpose: string;
  @ApiProperty() retention: string;
  @ApiProperty({ type: [DataMapFieldView] }) fields: DataMapFieldView[];
}

export class DataMapView {
  @ApiProperty({ type: [DataMapEntityView] }) entities: DataMapEntityView[];
}
