import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Per-organization security policy: which roles must use MFA, the shortest password allowed,
 * and how long sessions last. The checks keep every value inside the bounds the server allows;
 * the API refuses a password minimum below 15 unless every role must use MFA.
 */
export class AddOrganizationSecurityPolicy1764892800000 implements MigrationInterface {
  name = 'AddOrganizationSecurityPolicy1764892800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      alter table organizations
        add column mfa_required_roles text[] not null default '{}'
          check (mfa_required_roles <@ array['admin', 'manager', 'agent', 'viewer']),
        add column password_min_length integer not null default 15
          check (password_min_length between 8 and 64),
        add column session_idle_minutes integer not null default 30
          check (session_idle_minutes between 5 and 480),
        add column session_absolute_hours integer not null default 12
          check (session_absolute_hours between 1 and 168)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      alter table organizations
        drop column session_absolute_hours,
        drop column session_idle_minutes,
        drop column password_min_length,
        drop column mfa_required_roles`);
  }
}
