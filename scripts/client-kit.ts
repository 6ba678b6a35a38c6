import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { io, Socket } from 'socket.io-client';

// Shared by the client scripts (demo, bench). It speaks only the public contract of
// /work/shared/DESIGN.md over HTTP and Socket.IO, and imports nothing from apps/ or libs/.

export const DEFAULT_PARLEY_URL = 'http://127.0.0.1:3000';

export const DEFAULT_WAIT_MS = 10_000;

export type JsonRecord = Record<string, unknown>;

export interface ProblemDetails {
  status?: number;
  title?: string;
  detail?: string;
  code?: string;
  requestId?: string;
}

export interface ApiRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  token?: string;
  body?: unknown;
  origin?: string;
  timeoutMs?: number;
}

export interface ApiResponse {
  status: number;
  contentType: string;
  body: unknown;
}

export type SocketAck =
  | { ok: true; payload: JsonRecord }
  | { ok: false; code: string; message: string; payload: JsonRecord };

export class ApiCallError extends Error {
  constructor(
    readonly request: ApiRequest,
    readonly response: ApiResponse,
  ) {
    super(`${request.method} ${request.path} -> ${describeResponse(response)}`);
  }
}

export function readParleyUrl(): string {
  const configured = process.env.PARLEY_URL ?? DEFAULT_PARLEY_URL;

  return configured.replace(/\/+$/, '');
}

export function readIntegerOption(argv: string[], name: string, fallback: number): number {
  const flag = `--${name}`;
  let raw: string | undefined;

  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index];
    if (argument === flag) {
      raw = argv[index + 1];
    } else if (argument.startsWith(`${flag}=`)) {
      raw = argument.slice(flag.length + 1);
    }
  }

  if (raw === undefined) {
    return fallback;
  }

  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${flag} must be a positive integer, got "${raw}"`);
  }

  return value;
}

export function findUpwards(startDirectory: string, relativePath: string): string {
  let directory = startDirectory;

  for (;;) {
    const candidate = join(directory, relativePath);
    if (existsSync(candidate)) {
      return candidate;
    }

    const parent = dirname(directory);
    if (parent === directory) {
      throw new Error(`could not find ${relativePath} above ${startDirectory}`);
    }
    directory = parent;
  }
}

export function randomSuffix(): string {
  return randomBytes(5).toString('hex');
}

export function generateStrongPassword(): string {
  // 24 random bytes give 32 base64url characters (192 bits); the fixed tail guarantees
  // a digit, a symbol and both cases for servers that still ask for character classes.
  return `${randomBytes(24).toString('base64url')}-Aa7`;
}

export function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function expectRecord(value: unknown, context: string): JsonRecord {
  if (!isRecord(value)) {
    throw new Error(`${context}: expected a JSON object, got ${preview(value)}`);
  }

  return value;
}

export function readString(record: JsonRecord, key: string, context: string): string {
  const value = record[key];
  if (typeof value !== 'string' || value.length === 0) {
    throw new Error(`${context}: expected a non-empty string "${key}", got ${preview(value)}`);
  }

  return value;
}

export function readItems(body: unknown, context: string): unknown[] {
  if (Array.isArray(body)) {
    return body;
  }

  const record = expectRecord(body, context);
  if (!Array.isArray(record.items)) {
    throw new Error(`${context}: expected an array or {items:[...]}, got ${preview(body)}`);
  }

  return record.items;
}

export function preview(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  if (text === undefined) {
    return String(value);
  }

  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

export function readProblem(response: ApiResponse): ProblemDetails | undefined {
  if (!isRecord(response.body)) {
    return undefined;
  }

  const body = response.body;

  return {
    status: typeof body.status === 'number' ? body.status : undefined,
    title: typeof body.title === 'string' ? body.title : undefined,
    detail: typeof body.detail === 'string' ? body.detail : undefined,
    code: typeof body.code === 'string' ? body.code : undefined,
    requestId: typeof body.requestId === 'string' ? body.requestId : undefined,
  };
}

export function describeResponse(response: ApiResponse): string {
  const problem = readProblem(response);
  if (!problem || (!problem.code && !problem.title)) {
    return `${response.status} ${preview(response.body)}`;
  }

  const parts = [`${response.status}`, problem.code ?? problem.title];
  if (problem.detail) {
    parts.push(`- ${problem.detail}`);
  }
  if (problem.requestId) {
    parts.push(`(requestId ${problem.requestId})`);
  }

  return parts.join(' ');
}

export async function callApi(baseUrl: string, request: ApiRequest): Promise<ApiResponse> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (request.body !== undefined) {
    headers['content-type'] = 'application/json';
  }
  if (request.token) {
    headers.authorization = `Bearer ${request.token}`;
  }
  if (request.origin) {
    headers.origin = request.origin;
  }

  let response: Response;
  try {
    response = await fetch(`${baseUrl}${request.path}`, {
      method: request.method,
      headers,
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
      signal: AbortSignal.timeout(request.timeoutMs ?? DEFAULT_WAIT_MS),
    });
  } catch (error) {
    throw new Error(`${request.method} ${request.path} failed: ${describeFetchError(error)}`, {
      cause: error,
    });
  }

  const contentType = response.headers.get('content-type') ?? '';
  const text = await response.text();
  let body: unknown = text;
  if (text.length > 0 && /json/i.test(contentType)) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }

  return { status: response.status, contentType, body };
}

export function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) {
    return String(error);
  }

  // Node's fetch reports connection problems as "fetch failed" with the reason in `cause`.
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';

  return `${error.name === 'TimeoutError' ? 'timed out' : error.message}${cause}`;
}

export async function callApiOrThrow(baseUrl: string, request: ApiRequest): Promise<unknown> {
  const response = await callApi(baseUrl, request);
  if (response.status < 200 || response.status >= 300) {
    throw new ApiCallError(request, response);
  }

  return response.body;
}

export function connectChatSocket(
  baseUrl: string,
  token: string,
  timeoutMs = DEFAULT_WAIT_MS,
): Promise<Socket> {
  // Reconnection is off so that a refused handshake fails here instead of retrying forever.
  const socket = io(`${baseUrl}/chat`, {
    auth: { token },
    transports: ['websocket'],
    reconnection: false,
    timeout: timeoutMs,
    forceNew: true,
  });

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`socket connect to ${baseUrl}/chat timed out after ${timeoutMs} ms`));
    }, timeoutMs);

    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });

    socket.once('connect_error', (error: Error) => {
      clearTimeout(timer);
      socket.close();
      reject(new Error(`socket connect to ${baseUrl}/chat refused: ${error.message}`));
    });
  });
}

export async function emitWithAck(
  socket: Socket,
  event: string,
  payload: JsonRecord,
  timeoutMs = DEFAULT_WAIT_MS,
): Promise<SocketAck> {
  let reply: unknown;
  try {
    reply = await socket.timeout(timeoutMs).emitWithAck(event, payload);
  } catch {
    throw new Error(`no acknowledgement for ${event} within ${timeoutMs} ms`);
  }

  const record = expectRecord(reply, `${event} acknowledgement`);
  if (record.ok === true) {
    return { ok: true, payload: record };
  }

  if (record.ok === false) {
    const error = isRecord(record.error) ? record.error : {};

    return {
      ok: false,
      code: typeof error.code === 'string' ? error.code : '',
      message: typeof error.message === 'string' ? error.message : '',
      payload: record,
    };
  }

  throw new Error(`${event} acknowledgement has no boolean "ok": ${preview(reply)}`);
}

export function describeAck(ack: SocketAck): string {
  if (ack.ok) {
    return 'ok';
  }

  return `refused ${ack.code || '(no code)'}${ack.message ? `: ${ack.message}` : ''}`;
}
