import { Injectable } from '@nestjs/common';

/** Every deadline, timeout and expiry reads this clock, so tests move time instead of sleeping. */
@Injectable()
export class Clock {
  private offsetMs = 0;

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  nowMs(): number {
    return Date.now() + this.offsetMs;
  }

  nowSeconds(): number {
    return Math.floor(this.nowMs() / 1000);
  }

  /** Moves this clock forward; only tests call it. */
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}
