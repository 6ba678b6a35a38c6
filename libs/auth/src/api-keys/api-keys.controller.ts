import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';

import { Policy } from '@parley/authz';
import { IdParam } from '@parley/tenancy';

import { ApiKeyListView, CreateApiKeyDto, IssuedApiKeyView } from './api-keys.dto';
import { ApiKeysService } from './api-keys.service';

/** Member-only: an API key is never accepted here, so a key cannot mint or keep alive keys. */
@ApiTags('api-keys')
@ApiBearerAuth()
@Controller('api-keys')
export class ApiKeysController {
  constructor(private readonly apiKeys: ApiKeysService) {}

  @Post()
  @HttpCode(201)
  @Policy.can('create', 'ApiKey')
  @ApiCreatedResponse({ type: IssuedApiKeyView, description: 'the key is in `key`, shown once' })
  create(@Body() input: CreateApiKeyDto): Promise<IssuedApiKeyView> {
    return this.apiKeys.create(input);
  }

  @Get()
  @Policy.can('read', 'ApiKey')
  @ApiOkResponse({ type: ApiKeyListView })
  async list(): Promise<ApiKeyListView> {
    return { items: await this.apiKeys.list() };
  }

  @Post(':id/rotate')
  @HttpCode(200)
  @Policy.can('update', 'ApiKey')
  @ApiOkResponse({ type: IssuedApiKeyView, description: 'the new key is in `key`, shown once' })
  rotate(@Param() params: IdParam): Promise<IssuedApiKeyView> {
    return this.apiKeys.rotate(params.id);
  }

  @Delete(':id')
  @HttpCode(204)
  @Policy.can('delete', 'ApiKey')
  @ApiNoContentResponse()
  async revoke(@Param() params: IdParam): Promise<void> {
    await this.apiKeys.revoke(params.id);
  }
}
