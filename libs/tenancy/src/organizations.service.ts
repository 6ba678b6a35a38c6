import { randomUUID } from 'node:crypto';

import { HttpStatus, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { NotFoundProblem, ROLES, RequestContext } from '@parley/core';
import { randomToken } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';

import { OrganizationEntity } from './organization.entity';
import { TenancyErrorCode, TenancyProblem, isUniqueViolation } from './tenancy.errors';
import {
  OrganizationView,
  PASSWORD_MIN_LENGTH,
  SecurityPolicyDto,
  UpdateOrganizationDto,
} from './tenancy.dto';

export function toOrganizationView(organization: OrganizationEntity): OrganizationView {
  return {
    id: organization.id,
    slug: organization.slug,
    name: organization.name,
    widget: { key: organization.widgetKey, allowedOrigins: organization.widgetAllowedOrigins },
    security: {
      mfaRequiredRoles: organization.mfaRequiredRoles,
      passwordMinLength: organization.passwordMinLength,
      sessionIdleMinutes: organization.sessionIdleMinutes,
      sessionAbsoluteHours: organization.sessionAbsoluteHours,
    },
  };
}

/** Applies a policy change, refusing a short password minimum unless every role must use MFA. */
function applySecurityPolicy(organization: OrganizationEntity, policy: SecurityPolicyDto): void {
  const mfaRequiredRoles = policy.mfaRequiredRoles
    ? [...new Set(policy.mfaRequiredRoles)]
    : organization.mfaRequiredRoles;
  const passwordMinLength = policy.passwordMinLength ?? organization.passwordMinLength;
  if (
    passwordMinLength < PASSWORD_MIN_LENGTH &&
    !ROLES.every((role) => mfaRequiredRoles.includes(role))
  ) {
    throw new TenancyProblem(
      TenancyErrorCode.PolicyRefused,
      `passwordMinLength may go below ${PASSWORD_MIN_LENGTH} only when every role must use MFA.`,
      HttpStatus.UNPROCESSABLE_ENTITY,
    );
  }
  organization.mfaRequiredRoles = mfaRequiredRoles;
  organization.passwordMinLength = passwordMinLength;
  organization.sessionIdleMinutes = policy.sessionIdleMinutes ?? organization.sessionIdleMinutes;
  organization.sessionAbsoluteHours =
    policy.sessionAbsoluteHours ?? organization.sessionAbsoluteHours;
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
          mfaRequiredRoles: [],
          passwordMinLength: PASSWORD_MIN_LENGTH,
          sessionIdleMinutes: 30,
          sessionAbsoluteHours: 12,
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

    if (changes.security !== undefined) {
      applySecurityPolicy(organization, changes.security);
    }

    return this.transactions.manager.save(OrganizationEntity, organization);
  }
}
