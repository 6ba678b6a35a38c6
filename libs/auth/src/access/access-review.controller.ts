import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';

import { Policy } from '@parley/authz';

import { AccessReviewView } from './access-review.dto';
import { AccessReviewService } from './access-review.service';

@ApiTags('access')
@ApiBearerAuth()
@Controller('access')
export class AccessReviewController {
  constructor(private readonly review: AccessReviewService) {}

  /** Every member's access at once, for the admins who manage members. */
  @Get('review')
  @Policy.can('manage', 'User')
  @ApiOkResponse({ type: AccessReviewView })
  show(): Promise<AccessReviewView> {
    return this.review.review();
  }
}
