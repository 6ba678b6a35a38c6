import { recordCredential, recordSentValues } from './run-record';
import { TlsRequest, TlsResponse, fetchOverTls } from './tls';

/**
 * A parsed JSON body. Suites read response bodies field by field in their assertions, where a
 * declared type per response would be noise; the assertions are what check the shape.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type JsonBody = any;

/** What came back from the server, with the body parsed when it is JSON. */
export interface ApiResponse<T = JsonBody> {
  status: number;
  headers: Headers;
  contentType: string;
  text: string;
  body: T;
}

export interface RequestOptions {
  /** Sent as JSON; use `rawBody` for bytes that must reach the server exactly as written. */
  body?: unknown;
  rawBody?: string;
  token?: string;
  headers?: Record<string, string>;
  contentType?: string;
}

const TOKEN_FIELDS = ['accessToken', 'refreshToken', 'visitorToken', 'token'];
const SECRET_REQUEST_FIELDS = ['password', 'currentPassword', 'newPassword', 'refreshToken'];

/**
 * A small fetch client for one test server. It remembers every password it sends and every token
 * it receives, so a suite can check afterwards that none of them reached the logs.
 */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly secrets: Set<string>,
    /** The certificate to trust when `baseUrl` is https (the test certificate is self-signed). */
    readonly ca?: string,
  ) {}

  get<T = JsonBody>(path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    return this.request<T>('GET', path, options);
  }

  post<T = JsonBody>(
    path: string,
    body?: unknown,
    options: RequestOptions = {},
  ): Promise<ApiResponse<T>> {
    return this.request<T>('POST', path, { ...options, body });
  }

  patch<T = JsonBody>(
    path: string,
    body?: unknown,
    options: RequestOptions = {},
  ): Promise<ApiResponse<T>> {
    return this.request<T>('PATCH', path, { ...options, body });
  }

  delete<T = JsonBody>(path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    return this.request<T>('DELETE', path, options);
  }

  async request<T = JsonBody>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    let payload: string | undefined;
    if (options.rawBody !== undefined) {
      payload = options.rawBody;
      recordSentValues(parsedOrUndefined(options.rawBody), `${method} ${path.split('?')[0]}`);
      headers['content-type'] ??= options.contentType ?? 'application/json';
    } else if (options.body !== undefined) {
      payload = JSON.stringify(options.body);
      headers['content-type'] ??= options.contentType ?? 'application/json';
      recordSentValues(options.body, `${method} ${path.split('?')[0]}`);
      this.rememberRequestSecrets(options.body);
    }
    if (options.token !== undefined) {
      headers.authorization = `Bearer ${options.token}`;
      this.remember(options.token);
    }

    const response = await this.send(`${this.baseUrl}${path}`, { method, headers, body: payload });
    const text = await response.text();
    const contentType = response.headers.get('content-type') ?? '';
    let body: unknown = text;
    // JSON and problem+json, not NDJSON (an export is many documents, read as text).
    if (/\bjson\b/.test(contentType) && text !== '') {
      body = JSON.parse(text);
      this.rememberResponseTokens(body);
    }

    return {
      status: response.status,
      headers: response.headers,
      contentType,
      text,
      body: body as T,
    };
  }

  private send(url: string, init: TlsRequest): Promise<Response | TlsResponse> {
    if (this.ca === undefined) {
      return fetch(url, init);
    }

    return fetchOverTls(url, init, { ca: this.ca });
  }

  remember(secret: string | undefined): void {
    if (typeof secret === 'string' && secret.length >= 8) {
      this.secrets.add(secret);
      recordCredential(secret, 'a token or key the client received or sent');
    }
  }

  private rememberRequestSecrets(body: unknown): void {
    if (body && typeof body === 'object') {
      for (const field of SECRET_REQUEST_FIELDS) {
        this.remember((body as Record<string, string | undefined>)[field]);
      }
    }
  }

  private rememberResponseTokens(body: unknown): void {
    if (body && typeof body === 'object') {
      for (const field of TOKEN_FIELDS) {
        this.remember((body as Record<string, string | undefined>)[field]);
      }
    }
  }
}

/** A raw body that is valid JSON, parsed; anything else is not recorded. */
function parsedOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
