import { io } from 'socket.io-client';

import { Clock } from '@parley/core';

import { login, signupOrganization } from './factories';
import { TestServer, connectSocket, startServer } from './support';

describe('socket limits', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({
      env: { ACCESS_TOKEN_TTL_SECONDS: '60', CREDENTIAL_RATE_LIMIT_PER_MINUTE: '10000' },
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('refuses a flood from one socket event by event and keeps serving it afterwards', async () => {
    const organization = await signupOrganization(server.api);
    const socket = await connectSocket(server, organization.admin.tokens.accessToken);
    const conversationId = '00000000-0000-4000-8000-000000000000';

    const acks = await Promise.all(
      Array.from({ length: 300 }, () =>
        socket.timeout(10_000).emitWithAck('conversation:join', { conversationId }),
      ),
    );
    const limited = acks.filter((ack) => ack.error?.code === 'rate_limited');
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const later = await socket.timeout(5_000).emitWithAck('conversation:join', { conversationId });

    expect(limited.length).toBeGreaterThan(100);
    expect(acks.length - limited.length).toBeGreaterThanOrEqual(100);
    expect(socket.connected).toBe(true);
    expect(later.error?.code).toBe('not_found');
    socket.close();
  });

  it('warns a socket before its token expires and cuts it at expiry when it does not refresh', async () => {
    const organization = await signupOrganization(server.api);
    const tokens = await login(
      server.api,
      organization.slug,
      organization.admin.email,
      organization.admin.password,
    );
    const clock = server.app.get(Clock);
    clock.advance(57_000);
    try {
      const socket = io(`${server.baseUrl}/chat`, {
        auth: { token: tokens.accessToken },
        transports: ['websocket'],
        reconnection: false,
        autoConnect: false,
      });
      const warned = new Promise((resolve) => socket.once('auth:expiring', resolve));
      const expired = new Promise((resolve) => socket.once('auth:expired', resolve));
      const cut = new Promise<string>((resolve) => socket.once('disconnect', resolve));
      socket.connect();

      await expect(warned).resolves.toBeDefined();
      await expect(expired).resolves.toEqual({ reason: 'token_expired' });
      await expect(cut).resolves.toBe('io server disconnect');
    } finally {
      clock.advance(-57_000);
    }
  });
});

describe('socket session sweep', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ env: { SESSION_SWEEP_SECONDS: '1' } });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('cuts a listening socket whose session ended by idle time, which nothing announces', async () => {
    const organization = await signupOrganization(server.api);
    const socket = await connectSocket(server, organization.admin.tokens.accessToken);
    const expired = new Promise((resolve) => socket.once('auth:expired', resolve));
    const cut = new Promise<string>((resolve) => socket.once('disconnect', resolve));
    const clock = server.app.get(Clock);

    // Sweeps run while the socket only listens; they must not count as use of the session.
    clock.advance(20 * 60_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    clock.advance(11 * 60_000);
    try {
      await expect(expired).resolves.toEqual({ reason: 'session_ended' });
      await expect(cut).resolves.toBe('io server disconnect');
    } finally {
      clock.advance(-31 * 60_000);
    }
  });

  it('keeps a listening socket whose session is still within its idle time', async () => {
    const organization = await signupOrganization(server.api);
    const socket = await connectSocket(server, organization.admin.tokens.accessToken);

    await new Promise((resolve) => setTimeout(resolve, 2_500));

    expect(socket.connected).toBe(true);
    socket.close();
  });
});
