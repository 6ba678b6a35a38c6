import {
  PasswordPolicy,
  PasswordProblem,
  passwordContext,
  passwordLength,
} from './password-policy';

describe('password policy', () => {
  const policy = new PasswordPolicy();
  const standard = { minLength: 15, context: [] };

  it('accepts a long password with no composition rules at all', () => {
    expect(policy.screen('tangerine lamp above quiet rivers', standard)).toBeUndefined();
    expect(policy.screen('x'.repeat(3) + 'q8Zr-mountain-kettle', standard)).toBeUndefined();
  });

  it('refuses fewer characters than the minimum, counting characters, not bytes', () => {
    expect(policy.screen('pale-kite-41xq', standard)).toEqual({
      reason: 'too_short',
      message: 'must be at least 15 characters',
    });
    expect(policy.screen('pale-kite-41xq', { minLength: 8, context: [] })).toBeUndefined();
    expect(passwordLength('💡'.repeat(8))).toBe(8);
  });

  it('never goes below the floor of 8, whatever the organization asks', () => {
    expect(policy.screen('k4!x9#q', { minLength: 4, context: [] })?.reason).toBe('too_short');
  });

  it('refuses more than 256 characters instead of cutting them', () => {
    const long = 'tangerine lamp above quiet rivers '.repeat(8).slice(0, 257);

    expect(policy.screen(long, standard)?.reason).toBe('too_long');
    expect(policy.screen(long.slice(0, 256), standard)).toBeUndefined();
  });

  it('refuses common passwords from the list, whatever their case', () => {
    expect(policy.screen('passwordpassword', standard)?.reason).toBe('too_common');
    expect(policy.screen('1QAZ2WSX3EDC4RFV', standard)?.reason).toBe('too_common');
    expect(policy.screen('Sunshine', { minLength: 8, context: [] })?.reason).toBe('too_common');
  });

  it("refuses a password containing the email's name or the organization slug", () => {
    const context = passwordContext('grace.hopper@example.com', 'acme-support');

    expect(policy.screen('my-Grace.Hopper-secret-9', { minLength: 15, context })?.reason).toBe(
      'guessable',
    );
    expect(policy.screen('ACME-SUPPORT-rocks-and-rolls', { minLength: 15, context })?.reason).toBe(
      'guessable',
    );
    expect(
      policy.screen('tangerine lamp above quiet rivers', { minLength: 15, context }),
    ).toBeUndefined();
  });

  it('refuses repeats, sequences and keyboard walks that are not on the list', () => {
    for (const password of ['aaaaaaaaaaaaaaaa', '1234567890123456', 'qwertyuiopasdfgh']) {
      expect({ password, reason: policy.screen(password, standard)?.reason }).toEqual({
        password,
        reason: expect.stringMatching(/^(guessable|too_common)$/),
      });
    }
  });

  it('throws a 400 problem naming the field', () => {
    let thrown: unknown;
    try {
      policy.assertAcceptable('passwordpassword', standard, 'newPassword');
    } catch (error) {
      thrown = error;
    }

    expect(thrown).toBeInstanceOf(PasswordProblem);
    expect(thrown).toMatchObject({
      code: 'password_too_common',
      errors: [{ field: 'newPassword', message: expect.stringMatching(/^newPassword /) }],
    });
    expect((thrown as PasswordProblem).getStatus()).toBe(400);
  });
});
