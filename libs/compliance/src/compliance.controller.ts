import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';

import { Policy } from '@parley/authz';

import { DataMap } from './data-map.service';
import { DataMapView } from './data-map.dto';

@ApiTags('compliance')
@ApiBearerAuth()
@Controller('compliance')
export class ComplianceController {
  constructor(private readonly dataMap: DataMap) {}

  /** The record of processing: every stored field with its class, purpose, retention and protection. */
  @Get('data-map')
  @Policy.can('read', 'DataMap')
  @ApiOkResponse({ type: DataMapView })
  show(): DataMapView {
    return {
      entities: this.dataMap.tables().map((table) => ({
        entity: `${table.schema}.${table.table}`,
        purpose: table.purpose,
        retention: table.retention,
        fields: table.fields.map((field) => ({
          name: field.column,
          class: field.class,
          purpose: field.purpose,
          retention: field.retention,
          encrypted: field.encrypted,
          protection: field.protection,
          keyScope: field.keyScope,
        })),
      })),
    };
  }
}
