/**
 * The events an endpoint may subscribe to. Conversation events join this list when they are
 * built; `webhook.ping` is sent only on request (`POST /api/v1/webhooks/:id/ping`), to the one
 * endpoint named, and cannot be subscribed to.
 */
export const WEBHOOK_EVENTS = ['security.alert'] as const;

export type SubscribableWebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export type WebhookEvent = SubscribableWebhookEvent | 'webhook.ping';

export function isSubscribableEvent(value: string): value is SubscribableWebhookEvent {
  return (WEBHOOK_EVENTS as readonly string[]).includes(value);
}
