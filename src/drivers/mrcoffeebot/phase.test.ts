/** The coffee pot's phases (pot.ts): the safety rules that the transition table alone must keep. */
import { describe, expect, it } from 'vitest';
import { NEXT, type PhaseName } from './pot.js';

const phases = Object.keys(NEXT) as PhaseName[];

describe('coffee pot phases', () => {
  it('start a brew only from a pot that has confirmed B+0 since the port opened [rule 1]', () => {
    const into = phases.filter((p) => NEXT[p].includes('brewing'));
    expect(into.sort()).toEqual(['idle', 'turning-off']);
  });

  it('never resume a brew: brewing cannot lead back to itself, and a lost port passes through B+0 [rule 8]', () => {
    expect(NEXT.brewing).not.toContain('brewing');
    expect(NEXT.connecting).toEqual(expect.not.arrayContaining(['brewing', 'idle', 'turning-off']));
  });

  it('let every phase stop, and stay stopped [rule 3]', () => {
    for (const p of phases) if (p !== 'stopped') expect(NEXT[p]).toContain('stopped');
    expect(NEXT.stopped).toEqual([]);
  });

  it('let every running phase lose its port', () => {
    for (const p of phases) if (p !== 'stopped') expect(NEXT[p]).toContain('connecting');
  });
});
