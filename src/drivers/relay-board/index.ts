/**
 * The sprinkler relay board driver (`kind: relay-board/v1`): an Arduino whose relays drive the
 * valves, one `valve` entity per zone, named `<board id>-<zone>` (`garden-front`). The wire
 * protocol is in protocol.ts; board.ts keeps the rules below, which keep water from running
 * when hearth cannot see it. Each rule has a test (relay-board.test.ts, test/sprinklers.test.ts).
 *
 *  1. Off at start. setup never waits for the port: the entities exist at once, unavailable
 *     until the port has opened and settled (settleMs: the Arduino resets when its port is
 *     opened) and the board has confirmed `<n>,off` for every zone.
 *  2. Confirmed, or not done. Every command waits for the board's own answer for that relay
 *     and state (`INFO: requesting relay <n> change to state on|off`); `open` and `close`
 *     resolve only then. An ERROR, garbage, no answer within timeoutMs, or the port closing is
 *     a failure.
 *  3. Open only while refreshed. An open zone's `<n>,on` is resent every refreshMs and every
 *     answer is checked. The board drops a relay ~30 s after its last `on`, so a crash, a hang
 *     or `kill -9` of hearth closes the valve without hearth.
 *  4. Bounded. `open` takes `seconds` (required); more than maxOpenMinutes is cut to it, logged,
 *     and shown as `requestedSeconds` beside `seconds`. At the end hearth sends an explicit
 *     `<n>,off`. The end is timed on hearth's clock, and a real-time guard in the refresh loop
 *     closes the zone anyway if that clock never fires.
 *  5. At most maxZonesOpen zones open. Opening one more first closes the zone that has been open
 *     longest, with an off the board confirms, and only then opens the new one: a schedule that
 *     runs zones back to back never fails on a race, and the board never has more relays on
 *     than the limit. A zone whose off the board has not confirmed counts as open; if hearth
 *     cannot get it confirmed, the new zone is not opened and the command fails saying why.
 *     Commands on one board run one at a time, so two opens at once cannot both pass the limit.
 *  6. When in doubt, closed. An ERROR, a timeout or garbage in answer to a refresh, or any
 *     ERROR or garbage line the board sends unasked while zones are open: those zones are taken
 *     as closed (refreshing stops, the state says closed and why), `<n>,off` is sent while the
 *     port works, and it is logged once. A late INFO is ignored. A zone whose off is not
 *     confirmed is unavailable and its off is retried with backoff.
 *  7. Port lost: every zone is closed in hearth's view and unavailable with the reason; the
 *     port is reopened with backoff; once it settles, rule 1 runs again. Nothing resumes.
 *  8. Stop (SIGTERM/SIGINT via runtime.stop): no `on` is sent any more; every zone that is open
 *     or in doubt gets `<n>,off` and hearth waits for the answers, bounded, before closing the port.
 *  9. Never late. A command whose caller has given up (its deadline passed) sends nothing more;
 *     if its `on` was already confirmed, the zone is closed again.
 */
import { type Driver, lazySimulator } from '../../core/driver.js';
import { type RelayBoardConfig, relayBoardConfigSchema, zoneEntityId } from './config.js';

/** Arduino sprinkler relay boards (`kind: relay-board/v1`), one `valve` entity per zone. */
export const relayBoardDriver: Driver<RelayBoardConfig> = {
  name: 'relay-board',
  configKinds: ['relay-board/v1'],
  section: 'sprinklers',
  configSchema: relayBoardConfigSchema,
  // A command's deadline covers waiting behind the other zones' refreshes, closing the zones
  // open longest, and the open itself (board.ts gives its entities the same).
  entities: (c) =>
    c.zones.map((z) => ({
      id: zoneEntityId(c.id, z.name),
      kind: 'valve',
      name: `${c.name} ${z.name}`,
      timeoutMs: c.timeoutMs * (c.zones.length + 3),
      attributes: { relay: z.relay, maxOpenMinutes: c.maxOpenMinutes },
    })),
  simulator: lazySimulator({ transport: 'serial' }, async () => (await import('./simulator.js')).simulator),

  // board.ts brings the serial stack: only a config with a relay board loads it.
  async setup(ctx, config) {
    const { RelayBoard } = await import('./board.js');
    const board = new RelayBoard(ctx, config);
    board.start();
    return { stop: () => board.stop() };
  },
};

export { type RelayBoardConfig, relayBoardConfigSchema } from './config.js';
