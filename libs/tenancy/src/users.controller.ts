import { Body, Controller, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';

import { Policy } from '@parley/authz';

import { IdParam } from './common.dto';
import { CreateUserDto, UpdateUserDto, UserListView, UserView } from './tenancy.dto';
import { UsersService, toUserView } from './users.service';

@ApiTags('users')
@ApiBearerAuth()
@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Post()
  @HttpCode(201)
  @Policy.can('create', 'User')
  @ApiCreatedResponse({ type: UserView })
  async create(@Body() input: CreateUserDto): Promise<UserView> {
    return toUserView(await this.users.create(input));
  }

  @Get()
  @Policy.can('read', 'User')
  @ApiOkResponse({ type: UserListView })
  async list(): Promise<UserListView> {
    return { items: (await this.users.list()).map(toUserView) };
  }

  @Get(':id')
  @Policy.can('read', 'User')
  @ApiOkResponse({ type: UserView })
  async show(@Param() params: IdParam): Promise<UserView> {
    return toUserView(await this.users.findOrThrow(params.id));
  }

  @Patch(':id')
  @Policy.can('update', 'User')
  @ApiOkResponse({ type: UserView })
  async update(@Param() params: IdParam, @Body() changes: UpdateUserDto): Promise<UserView> {
    return toUserView(await this.users.changeRole(params.id, changes.role));
  }
}
