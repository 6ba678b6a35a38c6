import { ExecutionContext, RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { MetadataScanner, ModulesContainer } from '@nestjs/core';
import { GATEWAY_METADATA, MESSAGE_METADATA } from '@nestjs/websockets/constants';

import { POLICY_KEY, PolicyGuard, RoutePolicy } from '@parley/authz';

import { TestServer, expectProblem, startServer } from './support';

interface Handler {
  /** `GET /api/v1/users/:id` for routes, `ws /chat conversation:join` for socket events. */
  name: string;
  kind: 'route' | 'event';
  method?: string;
  url?: string;
  policy: RoutePolicy | undefined;
}

/** Paths the app serves outside the /api/v1 prefix (see setGlobalPrefix in create-app.ts). */
const UNPREFIXED = [
  '/health/live',
  '/health/ready',
  '/metrics',
  '/.well-known/jwks.json',
  '/.well-known/parley-audit-keys.json',
];

function joinPath(...parts: (string | undefined)[]): string {
  const path = parts
    .flatMap((part) => (part ?? '').split('/'))
    .filter((segment) => segment !== '')
    .join('/');

  return `/${path}`;
}

/** Every HTTP route and socket event handler of the running app, read from Nest's own container. */
function listHandlers(server: TestServer): Handler[] {
  const scanner = new MetadataScanner();
  const handlers: Handler[] = [];
  for (const module of server.app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as Function | undefined;
      if (!controller || !wrapper.instance) {
        continue;
      }
      const prototype = Object.getPrototypeOf(wrapper.instance);
      const base = Reflect.getMetadata(PATH_METADATA, controller) as string | string[] | undefined;
      for (const methodName of scanner.getAllMethodNames(prototype)) {
        const handler = prototype[methodName] as Function;
        const paths = Reflect.getMetadata(PATH_METADATA, handler) as string | string[] | undefined;
        if (paths === undefined) {
          continue;
        }
        const requestMethod =
          RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as number];
        for (const controllerPath of [base].flat()) {
          for (const path of [paths].flat()) {
            const local = joinPath(controllerPath, path);
            const url = UNPREFIXED.includes(local) ? local : joinPath('api/v1', local);
            handlers.push({
              name: `${requestMethod} ${url}`,
              kind: 'route',
              method: requestMethod,
              url,
              policy:
                Reflect.getMetadata(POLICY_KEY, handler) ??
                Reflect.getMetadata(POLICY_KEY, controller),
            });
          }
        }
      }
    }
    for (const wrapper of module.providers.values()) {
      const gateway = wrapper.metatype as Function | undefined;
      if (!gateway || !wrapper.instance || !Reflect.getMetadata(GATEWAY_METADATA, gateway)) {
        continue;
      }
      const options = (Reflect.getMetadata('websockets:gateway_options', gateway) ?? {}) as {
        namespace?: string;
      };
      const prototype = Object.getPrototypeOf(wrapper.instance);
      for (const methodName of scanner.getAllMethodNames(prototype)) {
        const handler = prototype[methodName] as Function;
        const event = Reflect.getMetadata(MESSAGE_METADATA, handler) as string | undefined;
        if (event === undefined) {
          continue;
        }
        handlers.push({
          name: `ws ${options.namespace ?? '/'} ${event}`,
          kind: 'event',
          policy:
            Reflect.getMetadata(POLICY_KEY, handler) ?? Reflect.getMetadata(POLICY_KEY, gateway),
        });
      }
    }
  }

  return handlers.sort((a, b) => a.name.localeCompare(b.name));
}

/** The routes Nest reported mapping at boot ("Mapped {/api/v1/users, POST} route"). */
function mappedRoutes(server: TestServer): string[] {
  return server.logs
    .entries()
    .map((entry) => /^Mapped \{(.+), (\w+)\} route$/.exec(String(entry.message ?? '')))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => `${match[2]} ${match[1]}`)
    .sort();
}

describe('every route and socket event has an access policy', () => {
  let server: TestServer;
  let handlers: Handler[];

  beforeAll(async () => {
    server = await startServer({ env: { LOG_LEVEL: 'info' } });
    handlers = listHandlers(server);
  });

  afterAll(async () => {
    await server?.close();
  });

  it('finds every route Nest mapped, and only those', () => {
    const routes = handlers
      .filter((handler) => handler.kind === 'route')
      .map((handler) => handler.name);

    expect(routes.length).toBeGreaterThanOrEqual(14);
    expect(routes).toEqual(
      expect.arrayContaining([
        'POST /api/v1/auth/signup',
        'GET /api/v1/users/:id',
        'GET /api/v1/audit/events',
        'GET /health/ready',
      ]),
    );
    expect(routes).toEqual(mappedRoutes(server));
  });

  it('finds no handler without a policy', () => {
    const missing = handlers.filter((handler) => !handler.policy).map((handler) => handler.name);

    expect(missing).toEqual([]);
  });

  it('gives every policy a known audience, and an action with a subject or neither', () => {
    for (const { name, policy } of handlers) {
      expect({ name, audience: policy?.audience }).toEqual({
        name,
        audience: expect.arrayContaining([expect.stringMatching(/^(user|visitor|public)$/)]),
      });
      expect({
        name,
        paired: (policy?.action === undefined) === (policy?.subject === undefined),
      }).toEqual({
        name,
        paired: true,
      });
    }
  });

  it('refuses every non-public route without a token (401), and no public route asks for one', async () => {
    const results: { name: string; status: number; code: string | undefined }[] = [];
    for (const handler of handlers.filter((candidate) => candidate.kind === 'route')) {
      const url = (handler.url as string).replace(
        /:[A-Za-z]+/g,
        '00000000-0000-4000-8000-000000000000',
      );
      const response = await server.api.request(handler.method as string, url, {
        body: ['POST', 'PATCH', 'PUT'].includes(handler.method as string) ? {} : undefined,
      });
      results.push({ name: handler.name, status: response.status, code: response.body?.code });
    }

    for (const result of results) {
      const handler = handlers.find((candidate) => candidate.name === result.name) as Handler;
      if (handler.policy?.audience.includes('public')) {
        expect({ ...result, unauthenticated: result.status === 401 }).toEqual({
          ...result,
          unauthenticated: false,
        });
        expect(result.code).not.toBe('policy_missing');
      } else {
        expect(result).toEqual({ ...result, status: 401 });
      }
    }
  });

  it('lists the public routes, so adding one is a visible decision', () => {
    const open = handlers
      .filter((handler) => handler.policy?.audience.includes('public'))
      .map((handler) => handler.name);

    expect(open).toEqual(
      expect.arrayContaining([
        'GET /health/live',
        'GET /health/ready',
        'POST /api/v1/auth/login',
        'POST /api/v1/auth/refresh',
        'POST /api/v1/auth/signup',
      ]),
    );
    for (const name of open) {
      expect(name).toMatch(
        /^(GET \/health\/|GET \/metrics$|GET \/\.well-known\/(jwks|parley-audit-keys)\.json$|POST \/api\/v1\/auth\/(signup|login|refresh)$|POST \/api\/v1\/widget\/sessions$)/,
      );
    }
  });

  it('has a guard that refuses a handler without a policy', () => {
    const guard = server.app.get(PolicyGuard);
    class Unguarded {
      handle(): void {}
    }
    const context = {
      getHandler: () => Unguarded.prototype.handle,
      getClass: () => Unguarded,
      getType: () => 'http',
      switchToHttp: () => ({ getRequest: () => ({}) }),
    } as unknown as ExecutionContext;

    let refusal: unknown;
    try {
      guard.canActivate(context);
    } catch (error) {
      refusal = error;
    }

    expect(refusal).toMatchObject({ code: 'policy_missing' });
    expect((refusal as { getStatus(): number }).getStatus()).toBe(403);
  });

  it('answers an unknown route with a problem and never a policy bypass', async () => {
    const response = await server.api.get('/api/v1/not-a-route');

    expectProblem(response, 404, 'route_not_found');
  });
});
