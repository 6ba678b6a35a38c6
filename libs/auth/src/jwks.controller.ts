import { Controller, Get, Header } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';

import { Policy } from '@parley/authz';

import { SigningKeys } from './signing-keys';

/** The public keys that verify this server's tokens, for resource servers and auditors. */
@ApiTags('auth')
@SkipThrottle({ api: true, credentials: true })
@Controller('.well-known')
export class JwksController {
  constructor(private readonly keys: SigningKeys) {}

  @Get('jwks.json')
  @Policy.public()
  @Header('cache-control', 'public, max-age=300')
  @ApiOkResponse({ description: 'JSON Web Key Set (RFC 7517) of every key that still verifies' })
  jwks(): { keys: object[] } {
    return this.keys.jwks();
  }
}
