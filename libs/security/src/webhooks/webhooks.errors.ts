import { HttpStatus } from '@nestjs/common';

import { CommonErrorCode, ProblemException } from '@parley/core';

import { WebhookAddressError } from './webhook-address';

export enum WebhooksErrorCode {
  /** Not http(s), not https in production, or carrying a user name or password. */
  InvalidUrl = 'webhook_url_invalid',
  /** The host is, or resolves to, a loopback, private, link-local or metadata address. */
  UrlNotAllowed = 'webhook_url_not_allowed',
  UrlUnresolvable = 'webhook_url_unresolvable',
}

export class WebhooksProblem extends ProblemException {
  constructor(code: WebhooksErrorCode, detail: string, status: number = HttpStatus.BAD_REQUEST) {
    super(status, code, { detail, errors: [{ field: 'url', message: detail }] });
  }

  static fromAddressError(error: WebhookAddressError): WebhooksProblem {
    switch (error.reason) {
      case 'forbidden_address':
        return new WebhooksProblem(WebhooksErrorCode.UrlNotAllowed, error.message);
      case 'unresolvable':
        return new WebhooksProblem(WebhooksErrorCode.UrlUnresolvable, error.message);
      default:
        return new WebhooksProblem(WebhooksErrorCode.InvalidUrl, error.message);
    }
  }
}

/** An endpoint with nothing to change. */
export class EmptyWebhookUpdateProblem extends ProblemException {
  constructor() {
    super(HttpStatus.BAD_REQUEST, CommonErrorCode.ValidationFailed, {
      detail: 'Give at least one of url, events or enabled.',
    });
  }
}
