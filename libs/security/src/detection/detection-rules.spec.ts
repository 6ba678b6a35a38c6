import { ConfigError, loadConfig } from '@parley/core';

import {
  DETECTION_RULES,
  DETECTION_RULE_NAMES,
  detectionSettings,
  ruleSummary,
} from './detection-rules';

describe('detection rule settings', () => {
  it('defaults every rule to a threshold and a window', () => {
    const settings = detectionSettings(loadConfig({}));

    expect(settings).toEqual({
      failed_login_burst_account: { threshold: 5, windowSeconds: 300 },
      failed_login_burst_address: { threshold: 20, windowSeconds: 300 },
      refresh_token_reuse: { threshold: 1, windowSeconds: 3600 },
      cross_tenant_probing: { threshold: 20, windowSeconds: 300 },
      api_key_new_address: { threshold: 1, windowSeconds: 86400 },
      mass_deletion: { threshold: 50, windowSeconds: 300 },
      mass_export: { threshold: 50, windowSeconds: 300 },
      rate_limit_escalation: { threshold: 20, windowSeconds: 300 },
      admin_privilege_change: { threshold: 1, windowSeconds: 60 },
    });
  });

  it('reads <threshold>/<window seconds>, and off turns a rule off', () => {
    const settings = detectionSettings(
      loadConfig({ DETECT_MASS_DELETION: '7/120', DETECT_MASS_EXPORT: 'OFF' }),
    );

    expect(settings.mass_deletion).toEqual({ threshold: 7, windowSeconds: 120 });
    expect(settings.mass_export).toBeNull();
  });

  it.each([
    '5',
    '5/',
    '/300',
    'five/300',
    '0/300',
    '5/0',
    '5/604801',
    '1000001/60',
    '-1/60',
    '5/300s',
  ])('refuses %p, naming the variable', (value) => {
    expect(() => loadConfig({ DETECT_CROSS_TENANT_PROBING: value })).toThrow(ConfigError);
    expect(() => loadConfig({ DETECT_CROSS_TENANT_PROBING: value })).toThrow(
      /DETECT_CROSS_TENANT_PROBING/,
    );
  });

  it('words each summary as one sentence without values of anyone', () => {
    for (const rule of DETECTION_RULE_NAMES) {
      for (const setting of [
        { threshold: 1, windowSeconds: 60 },
        { threshold: 12, windowSeconds: 7200 },
      ]) {
        const summary = ruleSummary(rule, setting);
        expect(summary).toMatch(/^[A-Z0-9].*\.$/);
        expect(summary).not.toContain('undefined');
      }
    }
    expect(ruleSummary('mass_deletion', { threshold: 50, windowSeconds: 300 })).toBe(
      '50 deletions by one caller within 5 minutes.',
    );
    expect(DETECTION_RULES.refresh_token_reuse.severity).toBe('high');
  });
});
