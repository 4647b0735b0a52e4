import type { Driver } from '../core/driver.js';
import { icalDriver } from './ical/index.js';
import { kasaDriver } from './kasa/index.js';
import { mqttThingsDriver } from './mqtt-things/index.js';
import { coffeeDriver } from './mrcoffeebot/index.js';
import { relayBoardDriver } from './relay-board/index.js';
import { sonosDriver } from './sonos/index.js';
import { wemoDriver } from './wemo/index.js';
import { zigbee2mqttDriver } from './zigbee2mqtt/index.js';

/** Every driver hearth ships. Adding a device type adds its folder and one line here. */
export const drivers: readonly Driver[] = [
  wemoDriver as unknown as Driver,
  kasaDriver as unknown as Driver,
  coffeeDriver as unknown as Driver,
  relayBoardDriver as unknown as Driver,
  sonosDriver as unknown as Driver,
  icalDriver as unknown as Driver,
  mqttThingsDriver as unknown as Driver,
  zigbee2mqttDriver as unknown as Driver,
];
