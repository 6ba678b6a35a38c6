import { ApiProperty } from '@nestjs/swagger';
import { IsUUID } from 'class-validator';

import { CanonicalUuid } from '@parley/core';

export class IdParam {
  @ApiProperty({ format: 'uuid' })
  @CanonicalUuid()
  @IsUUID('all', { message: 'id must be a UUID' })
  id: string;
}
