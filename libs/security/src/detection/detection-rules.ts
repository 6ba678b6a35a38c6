import { AppConfig, DetectionThreshold } from '@parley/core';

import { AlertSeverity } from '../alerts/security-alert';

export type DetectionRuleName =
  | 'failed_login_burst_account'
  | 'failed_login_burst_address'
  | 'refresh_token_reuse'
  | 'cross_tenant_probing'
  | 'api_key_new_address'
  | 'mass_deletion'
  | 'mass_export'
  | 'rate_limit_escalation'
  | 'admin_privilege_change';

type DetectionSettingKey = {
  [K in keyof AppConfig]: AppConfig[K] extends DetectionThreshold | null ? K : never;
}[keyof AppConfig];

interface DetectionRule {
  /** The configuration entry that sets its threshold and window. */
  setting: DetectionSettingKey;
  severity: AlertSeverity;
  /** One plain sentence for `count` events within `window` (already worded: "5 minutes"). */
  summary(count: number, window: string): string;
}

/** Every rule, with the severity of its alerts; thresholds and windows come from configuration. */
export const DETECTION_RULES: Record<DetectionRuleName, DetectionRule> = {
  failed_login_burst_account: {
    setting: 'detectFailedLoginsAccount',
    severity: 'medium',
    summary: (count, window) => `${count} failed sign-ins to one account within ${window}.`,
  },
  failed_login_burst_address: {
    setting: 'detectFailedLoginsAddress',
    severity: 'high',
    summary: (count, window) =>
      `${count} failed sign-ins from one client address within ${window}.`,
  },
  refresh_token_reuse: {
    setting: 'detectRefreshTokenReuse',
    severity: 'high',
    summary: (count, window) =>
      count === 1
        ? 'A refresh token that was already used was presented again; its session was ended.'
        : `${count} already used refresh tokens of one session were presented within ${window}.`,
  },
  cross_tenant_probing: {
    setting: 'detectCrossTenantProbing',
    severity: 'high',
    summary: (count, window) =>
      `${count} requests by one caller for ids it cannot see (404) within ${window}.`,
  },
  api_key_new_address: {
    setting: 'detectApiKeyNewAddress',
    severity: 'medium',
    summary: (count, window) =>
      count === 1
        ? 'An API key was used from a client address it had not been used from before.'
        : `An API key was used from ${count} client addresses new to it within ${window}.`,
  },
  mass_deletion: {
    setting: 'detectMassDeletion',
    severity: 'high',
    summary: (count, window) => `${count} deletions by one caller within ${window}.`,
  },
  mass_export: {
    setting: 'detectMassExport',
    severity: 'high',
    summary: (count, window) =>
      `${count} reads of export or audit listing routes by one caller within ${window}.`,
  },
  rate_limit_escalation: {
    setting: 'detectRateLimitEscalation',
    severity: 'medium',
    summary: (count, window) =>
      `${count} requests from one client address were refused by a rate limit within ${window}.`,
  },
  admin_privilege_change: {
    setting: 'detectAdminPrivilegeChange',
    severity: 'high',
    summary: (count, window) =>
      count === 1
        ? "A member's admin rights or an admin's MFA changed."
        : `${count} changes to one member's admin rights or MFA within ${window}.`,
  },
};

export const DETECTION_RULE_NAMES = Object.keys(DETECTION_RULES) as DetectionRuleName[];

export type DetectionSettings = Record<DetectionRuleName, DetectionThreshold | null>;

/** Each rule's threshold and window from the configuration; null turns a rule off. */
export function detectionSettings(config: AppConfig): DetectionSettings {
  const settings = {} as DetectionSettings;
  for (const name of DETECTION_RULE_NAMES) {
    settings[name] = config[DETECTION_RULES[name].setting] as DetectionThreshold | null;
  }

  return settings;
}

/** The sentence of an alert of `rule` fired at its threshold. */
export function ruleSummary(rule: DetectionRuleName, setting: DetectionThreshold): string {
  return DETECTION_RULES[rule].summary(setting.threshold, describeWindow(setting.windowSeconds));
}

export function describeWindow(seconds: number): string {
  if (seconds % 3600 === 0) {
    return seconds === 3600 ? 'an hour' : `${seconds / 3600} hours`;
  }
  if (seconds % 60 === 0) {
    return seconds === 60 ? 'a minute' : `${seconds / 60} minutes`;
  }

  return seconds === 1 ? 'a second' : `${seconds} seconds`;
}
