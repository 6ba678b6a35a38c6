import { ApiResponse } from './api-client';

/** Signs of a leaked stack trace or server path in an error body. */
const STACK_PATTERNS = [
  /\bat\s+\S+\s+\(.*:\d+:\d+\)/,
  /node_modules/,
  /\/work\//,
  /\.ts:\d+/,
  /"stack"/,
];

/**
 * Asserts an RFC 9457 problem response: the status, the stable code, every contract field, the
 * request id echoed in the header, and no stack trace anywhere in the body.
 */
export function expectProblem(response: ApiResponse, status: number, code?: string): void {
  const summary = `${response.status} ${response.text.slice(0, 300)}`;
  expect({ status: response.status, summary }).toEqual({ status, summary });
  expect(response.contentType).toMatch(/^application\/problem\+json/);

  const body = response.body as Record<string, unknown>;
  expect(body).toEqual(
    expect.objectContaining({
      status,
      title: expect.any(String),
      detail: expect.any(String),
      code: expect.stringMatching(/^[a-z][a-z_]+$/),
      requestId: expect.any(String),
    }),
  );
  if (code !== undefined) {
    expect(body.code).toBe(code);
  }
  expect(body.requestId).toBe(response.headers.get('x-request-id'));
  expect(body).not.toHaveProperty('stack');
  for (const pattern of STACK_PATTERNS) {
    expect(response.text).not.toMatch(pattern);
  }
}
