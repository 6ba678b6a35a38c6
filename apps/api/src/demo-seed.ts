import { Inject, Injectable, Logger } from '@nestjs/common';

import { APP_CONFIG, AppConfig, ROLES, RequestContext, Role } from '@parley/core';
import { randomToken } from '@parley/crypto';
import { OrganizationsService, UsersService } from '@parley/tenancy';

export const DEMO_SLUG = 'demo';

export interface DemoCredentials {
  organizationSlug: string;
  password: string;
  users: { role: Role; email: string }[];
  widgetKey: string;
}

/**
 * On an empty development database, creates the `demo` organization with one member per role
 * and prints their shared generated password once. Never runs in production.
 */
@Injectable()
export class DemoSeed {
  private readonly logger = new Logger(DemoSeed.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly organizations: OrganizationsService,
    private readonly users: UsersService,
    private readonly context: RequestContext,
  ) {}

  async seedIfEmpty(baseUrl: string, print = true): Promise<DemoCredentials | undefined> {
    if (!this.config.demoSeed || this.config.production) {
      return undefined;
    }
    if (await this.organizations.idBySlug(DEMO_SLUG)) {
      this.logger.log(
        { organization: DEMO_SLUG },
        'demo organization exists; its password was printed when it was created',
      );

      return undefined;
    }
    const password = randomToken(15);
    const origins = [
      baseUrl,
      'http://localhost:3000',
      'http://127.0.0.1:3000',
      'http://localhost:8080',
    ];
    const credentials = await this.context.run({ actor: { type: 'system', id: 'demo-seed' } }, () =>
      this.organizations.create({ slug: DEMO_SLUG, name: 'Demo Support' }, async (organization) => {
        const users = [];
        for (const role of ROLES) {
          const email = `${role}@demo.parley.test`;
          await this.users.create({
            email,
            name: `Demo ${role[0].toUpperCase()}${role.slice(1)}`,
            role,
            password,
          });
          users.push({ role, email });
        }
        await this.organizations.update({ widget: { allowedOrigins: [...new Set(origins)] } });

        return { organizationSlug: DEMO_SLUG, password, users, widgetKey: organization.widgetKey };
      }),
    );
    if (print) {
      this.print(baseUrl, credentials);
    }
    this.logger.log(
      { organization: DEMO_SLUG, members: credentials.users.length },
      'demo organization created',
    );

    return credentials;
  }

  private print(baseUrl: string, credentials: DemoCredentials): void {
    const lines = [
      '',
      '  Parley is running with a demo organization (shown once; keep the password):',
      `    organization slug  ${credentials.organizationSlug}`,
      ...credentials.users.map((user) => `    ${user.role.padEnd(18)} ${user.email}`),
      `    password           ${credentials.password}`,
      `    widget key         ${credentials.widgetKey}`,
      '',
      `    API        ${baseUrl}/api/v1`,
      `    API docs   ${baseUrl}/api/docs`,
      `    health     ${baseUrl}/health/ready`,
      `    chat       ${baseUrl}/chat (Socket.IO namespace)`,
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
