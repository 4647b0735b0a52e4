/**
 * The MrCoffeeBot driver: a coffee pot's controller board on USB serial (`kind:
 * mrcoffeebot/v1` in `coffee:`). The config entry is in config.ts, the protocol in protocol.ts, the serial loop in pot.ts,
 * the board itself in simulator.ts. This file is what every start loads; pot.ts is loaded by
 * the first setup.
 *
 * Entities, for a pot with id `coffee`:
 * - `coffee`              heater: on/off; `brew {minutes?}`, `stop`; attributes `until` (ISO,
 *                         while brewing) and `maxBrewMinutes`
 * - `coffee-water`        sensor: inches from the sensor down to the water (`unit: in`,
 *                         `deviceClass: distance`)
 * - `coffee-temperature`  sensor: °C (`unit: °C`)
 * - `coffee-last-status`  sensor: ISO time of the last valid status line (`deviceClass: timestamp`)
 *
 * SAFETY RULES. A heater must never stay on because hearth crashed, hung, lost the port or
 * read garbage. The firmware drops the heater 1 s after the last `B+1`; hearth builds on that
 * and never depends on luck to meet it. "Lose confidence: heater off", always.
 *
 *  1. Off at start. After the port opens and settles, the first command is `B+0`, and no brew
 *     is accepted until the pot has answered it with `B+0`.
 *  2. On only while brewing. `B+1` goes out every `heartbeatMs` (< 1000, default 300) while a
 *     brew runs, and only then; each answer is checked. Nothing else keeps the heater on, so
 *     if hearth dies, hangs or blocks its event loop, the heartbeats stop and the firmware
 *     turns the heater off within 1 s.
 *  3. Off on shutdown. Running.stop (hearth's SIGTERM/SIGINT) ends the brew, sends `B+0` and
 *     waits for its answer (bounded: at most two tries of `timeoutMs` behind the exchange on
 *     the wire) before it closes the port.
 *  4. A brew ends at `min(minutes, maxBrewMinutes)` (default 20, at most 120), by its own
 *     timer and again by a check before every heartbeat.
 *  5. Idle, `S+?` goes out every `pollMs` (< 5000, default 2000): the firmware does not reboot
 *     and the sensors stay fresh. A status that says `B+1` while hearth is not brewing is
 *     answered with `B+0` at once.
 *  6. Lose confidence, heater off. The brew ends and `B+0` is sent (and resent until the pot
 *     answers `B+0`) on: the `stop` command; a sensor CRC error (`T+-1000.0`); an implausible
 *     reading (T outside -20..110 °C, W outside 0..30 in); a `B+` that is not what was sent;
 *     an exchange that gets no answer within `timeoutMs`; a line that is not a status
 *     (garbage, half a line, two lines run together); a boot banner (the firmware rebooted);
 *     any line nobody asked for; the port closing. While the last status showed a sensor
 *     fault, or the last exchange failed, a brew is refused: not one `B+1` goes to a pot
 *     hearth does not trust.
 *  7. A brew command resolves only once the pot has answered `B+1` with `B+1`. If its
 *     deadline passes first the brew is cancelled: no further `B+1`, and `B+0` right after the
 *     exchange on the wire, so a heater is never kept on after the caller was told it failed.
 *  8. Port lost, or an exchange failed: every entity is unavailable with the reason until the
 *     next valid status. A lost port is reopened with backoff, and on return rule 1 applies
 *     again. A brew is never resumed after a reconnect.
 *  9. setup never waits for the port: an unplugged pot still has its entities, unavailable.
 * 10. Never resumed after a stall. If a whole heater window (1 s) passed since the last B+1
 *     (hearth was paused, swapped out or its event loop froze), the firmware has turned the
 *     heater off; the brew ends with B+0 instead of switching the heater back on.
 */
import { type Driver, lazySimulator } from '../../core/driver.js';
import { type CoffeeConfig, coffeeConfigSchema, coffeeEntityIds } from './config.js';

/**
 * How long a command may take: one exchange already on the wire, then its own. Doubled, so
 * a `stop` queued behind a `brew` (which settles within two exchanges, one way or the other)
 * still runs instead of expiring in the queue.
 */
export function commandTimeoutMs(config: Pick<CoffeeConfig, 'timeoutMs'>): number {
  return 4 * config.timeoutMs + 250;
}

/** MrCoffeeBot v2.0 coffee pots (`kind: mrcoffeebot/v1`): a heater and three sensors each. */
export const coffeeDriver: Driver<CoffeeConfig> = {
  name: 'mrcoffeebot',
  configKinds: ['mrcoffeebot/v1'],
  section: 'coffee',
  configSchema: coffeeConfigSchema,
  simulator: lazySimulator({ transport: 'serial' }, async () => (await import('./simulator.js')).simulator),
  entities(c) {
    const ids = coffeeEntityIds(c.id);
    const timeoutMs = commandTimeoutMs(c);
    return [
      {
        id: ids.heater,
        kind: 'heater',
        name: c.name,
        timeoutMs,
        attributes: { maxBrewMinutes: c.maxBrewMinutes },
      },
      // From the sensor down to the water: a distance, not a volume.
      {
        id: ids.water,
        kind: 'sensor',
        name: `${c.name} water`,
        timeoutMs,
        attributes: { unit: 'in', deviceClass: 'distance' },
      },
      {
        id: ids.temperature,
        kind: 'sensor',
        name: `${c.name} temperature`,
        timeoutMs,
        attributes: { unit: '°C' },
      },
      {
        id: ids.lastStatus,
        kind: 'sensor',
        name: `${c.name} last status`,
        timeoutMs,
        attributes: { deviceClass: 'timestamp' },
      },
    ];
  },

  // pot.ts brings the serial stack: only a config with a coffee pot loads it.
  async setup(ctx, config) {
    const { CoffeePot } = await import('./pot.js');
    // [rule 9] Nothing here waits for the device.
    const pot = new CoffeePot(ctx, config);
    pot.start();
    return { stop: () => pot.shutdown() };
  },
};

export { type CoffeeConfig, coffeeConfigSchema } from './config.js';
