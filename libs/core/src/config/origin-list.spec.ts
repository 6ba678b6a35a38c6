import { ConfigError, loadConfig } from './config.schema';

function dashboardOrigins(raw: string | undefined, nodeEnv = 'test'): string[] {
  return loadConfig({ NODE_ENV: nodeEnv, DASHBOARD_ORIGINS: raw }).dashboardOrigins;
}

describe('DASHBOARD_ORIGINS', () => {
  it('is empty when unset, so cookie mode refuses every origin', () => {
    expect(dashboardOrigins(undefined)).toEqual([]);
    expect(dashboardOrigins(' ')).toEqual([]);
  });

  it('keeps each origin in the exact form browsers send in the Origin header', () => {
    expect(
      dashboardOrigins(
        'https://App.Example.com/, https://app.example.com:443,http://localhost:5173,https://a.test:8443',
      ),
    ).toEqual(['https://app.example.com', 'http://localhost:5173', 'https://a.test:8443']);
  });

  it.each([
    ['a wildcard', '*'],
    ['a wildcard subdomain', 'https://*.example.com'],
    ['an empty entry', 'https://a.example.com,,https://b.example.com'],
    ['a path', 'https://app.example.com/dashboard'],
    ['a query', 'https://app.example.com/?next=1'],
    ['a fragment', 'https://app.example.com/#x'],
    ['a user name', 'https://user@app.example.com'],
    ['another scheme', 'ftp://app.example.com'],
    ['no scheme', 'app.example.com'],
  ])('refuses %s at boot, naming the variable', (_case, raw) => {
    expect(() => dashboardOrigins(raw)).toThrow(ConfigError);
    expect(() => dashboardOrigins(raw)).toThrow(/^Invalid configuration: DASHBOARD_ORIGINS /);
  });

  it('refuses plain http to anything but loopback in production', () => {
    const production = {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://parley@db.internal/parley',
      PARLEY_KEK: Buffer.alloc(32, 1).toString('base64'),
    };

    expect(() =>
      loadConfig({ ...production, DASHBOARD_ORIGINS: 'http://app.example.com' }),
    ).toThrow(/DASHBOARD_ORIGINS .*production needs https/);
    expect(
      loadConfig({
        ...production,
        DASHBOARD_ORIGINS: 'https://app.example.com,http://localhost:5173',
      }).dashboardOrigins,
    ).toEqual(['https://app.example.com', 'http://localhost:5173']);
    expect(dashboardOrigins('http://app.example.com', 'development')).toEqual([
      'http://app.example.com',
    ]);
  });
});
