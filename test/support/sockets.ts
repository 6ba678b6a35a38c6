import { Socket, io } from 'socket.io-client';

import { TestServer } from './server';

/** Opens a /chat socket with the token in the handshake auth payload; rejects on connect_error. */
export function connectSocket(server: TestServer, token: string): Promise<Socket> {
  const socket = io(`${server.baseUrl}/chat`, {
    auth: { token },
    transports: ['websocket'],
    reconnection: false,
    ca: server.ca,
  });

  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}
