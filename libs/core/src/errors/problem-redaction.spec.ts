import { HttpStatus } from '@nestjs/common';
import { IsEmail, IsString, Matches } from 'class-validator';

import { Classified } from '../classification/classification';
import { validatePayload } from '../validation/validation';

import { ProblemException, ProblemFieldError } from './problem.exception';
import { toProblem } from './problem.filter';

class Visitor {
  @Classified('confidential')
  email!: string;
}

class ContactInput {
  @IsEmail({}, { message: 'email must be an email address, not $value' })
  email!: string;

  @IsString()
  @Matches(/^\+?[0-9 ]+$/, { message: (args) => `phone ${String(args.value)} is not a number` })
  phone!: string;

  @IsString()
  name!: string;
}

async function refusal(payload: object): Promise<ProblemException> {
  try {
    await validatePayload(ContactInput, payload);
  } catch (error) {
    return error as ProblemException;
  }
  throw new Error('the payload was accepted');
}

describe('problem details', () => {
  it('never repeat a submitted value, even when a validation message would', async () => {
    const problem = toProblem(
      await refusal({ email: 'ada.lovelace-at-example', phone: 442079460958, name: 'Ada' }),
      'request-1',
    );

    expect(JSON.stringify(problem)).not.toContain('ada.lovelace-at-example');
    expect(JSON.stringify(problem)).not.toContain('442079460958');
    expect(problem.errors).toEqual([
      { field: 'email', message: 'email is invalid' },
      { field: 'phone', message: 'phone is invalid' },
    ]);
  });

  it('keep messages that do not repeat the value', async () => {
    const problem = toProblem(
      await refusal({ email: 'ada@example.com', phone: '+44 20', name: 42 }),
      undefined,
    );

    expect(problem.errors).toEqual([{ field: 'name', message: 'name must be a string' }]);
  });

  it('redact a classified value in extension members, whoever built them', () => {
    expect(new Visitor()).toBeInstanceOf(Visitor);
    const errors = [
      { field: 'visitor', message: 'is taken', visitor: { email: 'ada@example.com' } },
    ] as unknown as ProblemFieldError[];

    const exception = new ProblemException(HttpStatus.CONFLICT, 'conflict', { errors });
    const problem = toProblem(exception, undefined);

    expect(JSON.stringify(problem)).not.toContain('ada@example.com');
    expect(problem.errors).toEqual([
      { field: 'visitor', message: 'is taken', visitor: { email: '[redacted]' } },
    ]);
  });
});
