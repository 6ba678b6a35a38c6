import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

class ProblemFieldView {
  @ApiProperty() field: string;
  @ApiProperty() message: string;
}

/** The shape of every error response (RFC 9457), for the OpenAPI document. */
export class ProblemView {
  @ApiProperty({ example: 'https://parley.dev/problems/validation-failed' }) type: string;
  @ApiProperty({ example: 400 }) status: number;
  @ApiProperty({ example: 'Bad Request' }) title: string;
  @ApiProperty() detail: string;
  @ApiProperty({ example: 'validation_failed', description: 'stable machine-readable code' })
  code: string;
  @ApiProperty({ description: 'quote it when reporting a problem' }) requestId: string;
  @ApiPropertyOptional({ type: [ProblemFieldView] }) errors?: ProblemFieldView[];
}
