import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { WebhookAlertListener } from './webhook-alert-listener';
import { WebhookDeliveryEntity } from './webhook-delivery.entity';
import { WebhookDispatcher } from './webhook-dispatcher';
import { WebhookEndpointEntity } from './webhook-endpoint.entity';
import { WebhookEndpointsService } from './webhook-endpoints.service';
import { WebhookSender } from './webhook-sender';
import { WebhookWorker } from './webhook-worker';
import { WebhooksController } from './webhooks.controller';

/**
 * Signed webhooks: endpoints per organization, a durable delivery queue in the database, and
 * the worker that sends it. Other features queue events through `WebhookDispatcher`.
 */
@Module({
  imports: [TypeOrmModule.forFeature([WebhookEndpointEntity, WebhookDeliveryEntity])],
  controllers: [WebhooksController],
  providers: [
    WebhookDispatcher,
    WebhookEndpointsService,
    WebhookSender,
    WebhookWorker,
    WebhookAlertListener,
  ],
  exports: [WebhookDispatcher, WebhookWorker],
})
export class WebhooksModule {}
