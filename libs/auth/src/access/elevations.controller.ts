import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';

import { Policy } from '@parley/authz';
import { IdParam } from '@parley/tenancy';

import { ElevationListView, ElevationView, RequestElevationDto } from './elevations.dto';
import { ElevationsService } from './elevations.service';

/**
 * Just-in-time elevation. Members ask and may end their own; deciding takes the right to change
 * roles. API keys are refused on every route here.
 */
@ApiTags('access')
@ApiBearerAuth()
@Controller('access/elevations')
export class ElevationsController {
  constructor(private readonly elevations: ElevationsService) {}

  @Post()
  @HttpCode(201)
  @Policy.member()
  @ApiCreatedResponse({ type: ElevationView, description: 'pending until an admin approves it' })
  request(@Body() input: RequestElevationDto): Promise<ElevationView> {
    return this.elevations.request(input);
  }

  @Get()
  @Policy.member()
  @ApiOkResponse({ type: ElevationListView, description: 'admins see all, others their own' })
  list(): Promise<ElevationListView> {
    return this.elevations.list();
  }

  @Post(':id/approve')
  @HttpCode(200)
  @Policy.can('update', 'User')
  @ApiOkResponse({ type: ElevationView, description: 'the role applies from now' })
  approve(@Param() params: IdParam): Promise<ElevationView> {
    return this.elevations.approve(params.id);
  }

  @Post(':id/deny')
  @HttpCode(200)
  @Policy.can('update', 'User')
  @ApiOkResponse({ type: ElevationView })
  deny(@Param() params: IdParam): Promise<ElevationView> {
    return this.elevations.deny(params.id);
  }

  @Post(':id/revoke')
  @HttpCode(200)
  @Policy.member()
  @ApiOkResponse({ type: ElevationView, description: 'ends it now, or withdraws the request' })
  revoke(@Param() params: IdParam): Promise<ElevationView> {
    return this.elevations.revoke(params.id);
  }
}
