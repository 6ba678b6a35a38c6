import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';

import { Policy } from '@parley/authz';

import { WebhookEndpointsService } from './webhook-endpoints.service';
import {
  CreateWebhookDto,
  IssuedWebhookEndpointView,
  ListDeliveriesQuery,
  QueuedDeliveryView,
  UpdateWebhookDto,
  WebhookDeliveryListView,
  WebhookEndpointListView,
  WebhookEndpointView,
  WebhookIdParam,
} from './webhooks.dto';

/** Admins only; no API-key scope reaches these routes. */
@ApiTags('webhooks')
@ApiBearerAuth()
@Controller('webhooks')
export class WebhooksController {
  constructor(private readonly endpoints: WebhookEndpointsService) {}

  @Post()
  @HttpCode(201)
  @Policy.can('create', 'Webhook')
  @ApiCreatedResponse({
    type: IssuedWebhookEndpointView,
    description: 'the signing secret is in `secret`, shown once',
  })
  create(@Body() input: CreateWebhookDto): Promise<IssuedWebhookEndpointView> {
    return this.endpoints.create(input);
  }

  @Get()
  @Policy.can('read', 'Webhook')
  @ApiOkResponse({ type: WebhookEndpointListView })
  async list(): Promise<WebhookEndpointListView> {
    return { items: await this.endpoints.list() };
  }

  @Get(':id')
  @Policy.can('read', 'Webhook')
  @ApiOkResponse({ type: WebhookEndpointView })
  findOne(@Param() params: WebhookIdParam): Promise<WebhookEndpointView> {
    return this.endpoints.findOrThrow(params.id);
  }

  @Patch(':id')
  @Policy.can('update', 'Webhook')
  @ApiOkResponse({ type: WebhookEndpointView })
  update(
    @Param() params: WebhookIdParam,
    @Body() input: UpdateWebhookDto,
  ): Promise<WebhookEndpointView> {
    return this.endpoints.update(params.id, input);
  }

  @Delete(':id')
  @HttpCode(204)
  @Policy.can('delete', 'Webhook')
  @ApiNoContentResponse()
  async remove(@Param() params: WebhookIdParam): Promise<void> {
    await this.endpoints.remove(params.id);
  }

  @Post(':id/rotate-secret')
  @HttpCode(200)
  @Policy.can('update', 'Webhook')
  @ApiOkResponse({
    type: IssuedWebhookEndpointView,
    description:
      'the new secret is in `secret`, shown once; the old one co-signs during the overlap',
  })
  rotateSecret(@Param() params: WebhookIdParam): Promise<IssuedWebhookEndpointView> {
    return this.endpoints.rotateSecret(params.id);
  }

  @Get(':id/deliveries')
  @Policy.can('read', 'Webhook')
  @ApiOkResponse({ type: WebhookDeliveryListView })
  async deliveries(
    @Param() params: WebhookIdParam,
    @Query() query: ListDeliveriesQuery,
  ): Promise<WebhookDeliveryListView> {
    return { items: await this.endpoints.deliveries(params.id, query.limit) };
  }

  @Post(':id/ping')
  @HttpCode(202)
  @Policy.can('update', 'Webhook')
  @ApiAcceptedResponse({
    type: QueuedDeliveryView,
    description: 'a webhook.ping delivery is queued; the worker sends it within a second or so',
  })
  ping(@Param() params: WebhookIdParam): Promise<QueuedDeliveryView> {
    return this.endpoints.ping(params.id);
  }
}
