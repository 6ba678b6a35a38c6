import { Body, Controller, Get, Patch } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';

import { Policy } from '@parley/authz';

import { OrganizationsService, toOrganizationView } from './organizations.service';
import { OrganizationView, UpdateOrganizationDto } from './tenancy.dto';

@ApiTags('organization')
@ApiBearerAuth()
@Controller('organization')
export class OrganizationController {
  constructor(private readonly organizations: OrganizationsService) {}

  @Get()
  @Policy.can('read', 'Organization')
  @ApiOkResponse({ type: OrganizationView })
  async show(): Promise<OrganizationView> {
    return toOrganizationView(await this.organizations.currentOrThrow());
  }

  @Patch()
  @Policy.can('update', 'Organization')
  @ApiOkResponse({ type: OrganizationView })
  async update(@Body() changes: UpdateOrganizationDto): Promise<OrganizationView> {
    return toOrganizationView(await this.organizations.update(changes));
  }
}
