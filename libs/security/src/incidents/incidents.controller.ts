import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';

import { Policy } from '@parley/authz';
import { IdParam } from '@parley/tenancy';

import { IncidentContainment } from './incident-containment';
import {
  IncidentActionDto,
  IncidentActionView,
  IncidentPage,
  IncidentQueryDto,
  IncidentView,
  UpdateIncidentDto,
} from './incidents.dto';
import { IncidentsService } from './incidents.service';

/**
 * Security incidents, for admins only: incidents name members under attack or suspicion, and
 * their notes and breach assessments may hold personal data, so they are read on the same
 * footing as the audit trail. API keys reach no route here.
 */
@ApiTags('security')
@ApiBearerAuth()
@Controller('security/incidents')
export class IncidentsController {
  constructor(
    private readonly incidents: IncidentsService,
    private readonly containment: IncidentContainment,
  ) {}

  @Get()
  @Policy.can('read', 'Incident')
  @ApiOkResponse({ type: IncidentPage })
  list(@Query() query: IncidentQueryDto): Promise<IncidentPage> {
    return this.incidents.list(query);
  }

  @Get(':id')
  @Policy.can('read', 'Incident')
  @ApiOkResponse({ type: IncidentView, description: 'with its alerts, notes and actions' })
  get(@Param() params: IdParam): Promise<IncidentView> {
    return this.incidents.get(params.id);
  }

  @Patch(':id')
  @Policy.can('update', 'Incident')
  @ApiOkResponse({ type: IncidentView })
  update(@Param() params: IdParam, @Body() input: UpdateIncidentDto): Promise<IncidentView> {
    return this.incidents.update(params.id, input);
  }

  @Post(':id/actions')
  @HttpCode(201)
  @Policy.can('update', 'Incident')
  @ApiCreatedResponse({
    type: IncidentActionView,
    description: 'done, and recorded on the incident',
  })
  act(@Param() params: IdParam, @Body() input: IncidentActionDto): Promise<IncidentActionView> {
    return this.containment.take(params.id, input);
  }
}
