import type { DriverContext } from '../core/driver.js';

/** What a plug's protocol client offers: read the relay, switch it; true is on. */
export interface PlugCalls {
  get(signal: AbortSignal): Promise<boolean>;
  /** Resolves with the state the plug reports afterwards. */
  set(on: boolean, signal: AbortSignal): Promise<boolean>;
}

const toState = (on: boolean): 'on' | 'off' => (on ? 'on' : 'off');

/**
 * A smart plug's one `switch` entity (Wemo, Kasa). Deadlines and shutdown reach each call
 * through its signal: the runtime aborts it.
 */
export function addPlugSwitch(
  ctx: DriverContext,
  config: { id: string; pollSeconds: number },
  plug: PlugCalls,
): void {
  const set = (on: boolean, signal: AbortSignal) => plug.set(on, signal).then(toState);
  ctx.entities.bind(
    config.id,
    'switch',
    {
      on: (_args, { signal }) => set(true, signal),
      off: (_args, { signal }) => set(false, signal),
      // Read first, then set the opposite: the plug may have been switched by hand since hearth
      // last saw it (and homeslice's toggle always sent "on").
      toggle: async (_args, { signal }) => set(!(await plug.get(signal)), signal),
    },
    { pollMs: config.pollSeconds * 1000, read: ({ signal }) => plug.get(signal).then(toState) },
  );
}
