import { randomUUID } from 'node:crypto';

import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { NotFoundProblem, RequestContext } from '@parley/core';
import { randomToken } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';

import { OrganizationEntity } from './organization.entity';
import { TenancyErrorCode, TenancyProblem, isUniqueViolation } from './tenancy.errors';
import { OrganizationView, UpdateOrganizationDto } from './tenancy.dto';

export function toOrganizationView(organization: OrganizationEntity): OrganizationView {
  return {
    id: organization.id,
    slug: organization.slug,
    name: organization.name,
    widget: { key: organization.widgetKey, allowedOrigins: organization.widgetAllowedOrigins },
  };
}

@Injectable()
export class OrganizationsService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: TenantTransactions,
    private readonly context: RequestContext,
  ) {}

  /** Creates an organization in its own new tenant transaction; the caller adds its members. */
  async create<T>(
    input: { slug: string; name: string },
    then: (organization: OrganizationEntity) => Promise<T>,
  ): Promise<T> {
    const id = randomUUID();
    try {
      return await this.transactions.run(id, async (manager) => {
        const organization = manager.create(OrganizationEntity, {
          id,
          slug: input.slug,
          name: input.name,
          widgetKey: randomToken(18, 'pk_'),
          widgetAllowedOrigins: [],
        });
        await manager.insert(OrganizationEntity, organization);

        return then(organization);
      });
    } catch (error) {
      if (isUniqueViolation(error, 'organizations_slug_key')) {
        throw new TenancyProblem(
          TenancyErrorCode.SlugTaken,
          'An organization with this slug already exists.',
        );
      }
      throw error;
    }
  }

  /** Finds an organization id by slug before any tenant is known (a SECURITY DEFINER lookup). */
  async idBySlug(slug: string): Promise<string | undefined> {
    const rows: { id: string | null }[] = await this.dataSource.query(
      'select parley_organization_by_slug($1) as id',
      [slug],
    );

    return rows[0]?.id ?? undefined;
  }

  async idByWidgetKey(widgetKey: string): Promise<string | undefined> {
    const rows: { id: string | null }[] = await this.dataSource.query(
      'select parley_organization_by_widget_key($1) as id',
      [widgetKey],
    );

    return rows[0]?.id ?? undefined;
  }

  /** The organization of the current tenant transaction. */
  async currentOrThrow(): Promise<OrganizationEntity> {
    const organization = await this.transactions.manager.findOneBy(OrganizationEntity, {
      id: this.context.organizationIdOrThrow(),
    });
    if (!organization) {
      throw new NotFoundProblem('organization');
    }

    return organization;
  }

  async update(changes: UpdateOrganizationDto): Promise<OrganizationEntity> {
    const organization = await this.currentOrThrow();
    if (changes.name !== undefined) {
      organization.name = changes.name;
    }
    if (changes.widget !== undefined) {
      organization.widgetAllowedOrigins = [
        ...new Set(changes.widget.allowedOrigins.map((origin) => origin.toLowerCase())),
      ];
    }

    return this.transactions.manager.save(OrganizationEntity, organization);
  }
}
