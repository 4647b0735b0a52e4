import { describe, expect, it } from 'vitest';
import { clocktime, isValidTimeZone } from '../src/core/clock.js';

describe('clocktime', () => {
  const la = 'America/Los_Angeles';

  it('is HHMM, zero-padded, 24-hour', () => {
    expect(clocktime(Date.parse('2026-01-15T17:01:00Z'), la)).toBe('0901');
    expect(clocktime(Date.parse('2026-01-15T08:00:00Z'), la)).toBe('0000');
    expect(clocktime(Date.parse('2026-01-16T07:59:59Z'), la)).toBe('2359');
    expect(clocktime(Date.parse('2026-01-15T17:01:00Z'), 'UTC')).toBe('1701');
  });

  it('jumps from 01:59 to 03:00 when DST starts (2026-03-08 in Los Angeles)', () => {
    expect(clocktime(Date.parse('2026-03-08T09:59:00Z'), la)).toBe('0159');
    expect(clocktime(Date.parse('2026-03-08T10:00:00Z'), la)).toBe('0300');
    expect(clocktime(Date.parse('2026-03-08T10:30:00Z'), la)).toBe('0330');
  });

  it('repeats 01:00–01:59 when DST ends (2026-11-01 in Los Angeles)', () => {
    expect(clocktime(Date.parse('2026-11-01T08:30:00Z'), la)).toBe('0130'); // PDT
    expect(clocktime(Date.parse('2026-11-01T09:30:00Z'), la)).toBe('0130'); // PST, an hour later
    expect(clocktime(Date.parse('2026-11-01T10:00:00Z'), la)).toBe('0200');
  });

  it('follows the southern hemisphere and half-hour zones', () => {
    // Sydney: DST ends 2026-04-05 03:00 AEDT -> 02:00 AEST.
    expect(clocktime(Date.parse('2026-04-04T15:30:00Z'), 'Australia/Sydney')).toBe('0230');
    expect(clocktime(Date.parse('2026-04-04T16:30:00Z'), 'Australia/Sydney')).toBe('0230');
    expect(clocktime(Date.parse('2026-07-01T00:00:00Z'), 'Asia/Kolkata')).toBe('0530');
  });

  it('knows valid zones', () => {
    expect(isValidTimeZone(la)).toBe(true);
    expect(isValidTimeZone('Mars/Olympus_Mons')).toBe(false);
  });
});
