export * from './access-review.dto';
export * from './access-review.service';
export * from './effective-role';
export * from './elevations.dto';
export * from './elevations.errors';
export * from './elevations.service';
