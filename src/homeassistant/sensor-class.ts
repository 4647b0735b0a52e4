import {
  canonicalUnit,
  isSensorClass,
  type SensorClassName,
  stateClassOf,
  unitFits,
} from '../contract/sensor-classes.js';
import type { EntityView } from '../core/runtime-api.js';

/**
 * How a unit becomes a Home Assistant sensor device class, first matching row first. A row with
 * `words` needs one of them among the words of the entity's id and name: `%` is a battery's, the
 * air's humidity or the soil's moisture, and only the entity says which; with none of them it gets
 * no device class (Home Assistant then shows the number and its unit, no more). Kept in step with
 * the table in docs/mqtt.md ("Home Assistant discovery").
 */
export const unitRules: ReadonlyArray<{
  units: readonly string[];
  deviceClass: SensorClassName;
  words?: readonly string[];
}> = [
  { units: ['°C', '°F', 'K'], deviceClass: 'temperature' },
  { units: ['%'], deviceClass: 'battery', words: ['battery', 'batt'] },
  { units: ['%'], deviceClass: 'humidity', words: ['humidity', 'hum', 'rh'] },
  { units: ['%'], deviceClass: 'moisture', words: ['moisture', 'soil'] },
  { units: ['mm', 'cm', 'in'], deviceClass: 'precipitation', words: ['rain', 'rainfall', 'precipitation'] },
  { units: ['mm', 'cm', 'm', 'km', 'in', 'ft', 'yd', 'mi'], deviceClass: 'distance' },
  { units: ['mW', 'W', 'kW', 'MW'], deviceClass: 'power' },
  { units: ['Wh', 'kWh', 'MWh'], deviceClass: 'energy' },
  {
    units: ['Pa', 'hPa', 'kPa', 'mbar', 'cbar', 'bar', 'mmHg', 'inHg', 'psi'],
    deviceClass: 'pressure',
  },
  { units: ['μV', 'mV', 'V', 'kV'], deviceClass: 'voltage' },
  { units: ['mA', 'A'], deviceClass: 'current' },
  { units: ['lx'], deviceClass: 'illuminance' },
  { units: ['ppm'], deviceClass: 'carbon_dioxide', words: ['co2'] },
  { units: ['ppm'], deviceClass: 'carbon_monoxide', words: ['co'] },
  { units: ['ppm', 'ppb'], deviceClass: 'volatile_organic_compounds_parts', words: ['voc', 'tvoc'] },
  { units: ['μg/m³'], deviceClass: 'pm25', words: ['pm25'] },
  { units: ['μg/m³'], deviceClass: 'pm10', words: ['pm10'] },
  { units: ['μg/m³'], deviceClass: 'pm1', words: ['pm1'] },
  { units: ['μg/m³'], deviceClass: 'volatile_organic_compounds', words: ['voc', 'tvoc'] },
  { units: ['Hz', 'kHz', 'MHz', 'GHz'], deviceClass: 'frequency' },
  { units: ['ms', 's', 'min', 'h', 'd'], deviceClass: 'duration' },
  { units: ['dBm'], deviceClass: 'signal_strength' },
  { units: ['dB'], deviceClass: 'signal_strength', words: ['signal', 'rssi'] },
];

/** What Home Assistant gets to know about a sensor beside its state. */
export interface SensorDescription {
  /** As Home Assistant spells it (Greek mu for micro). */
  unit?: string;
  deviceClass?: SensorClassName;
  stateClass?: 'measurement' | 'total_increasing';
}

/** The words of an id and a name: `Outside PM2.5` and `outside-pm2_5` both give `outside`, `pm25`. */
export function wordsOf(...texts: string[]): Set<string> {
  const text = texts
    .join(' ')
    .toLowerCase()
    .replace(/pm\s*2[.,_-]5/g, 'pm25');
  return new Set(text.split(/[^a-z0-9]+/).filter((w) => w !== ''));
}

/**
 * The unit, device class and state class of a `sensor` entity: the class its driver declares in
 * `attributes.deviceClass` when Home Assistant takes its unit for it, else the first row of
 * {@link unitRules} that fits. A reading with a unit is a number, so it gets a state class (the
 * class's own, else `measurement`); a time or a text gets none.
 */
export function describeSensor(e: Pick<EntityView, 'id' | 'name' | 'attributes'>): SensorDescription {
  const raw = e.attributes.unit;
  const unit = typeof raw === 'string' && raw !== '' ? canonicalUnit(raw) : undefined;
  const declared = e.attributes.deviceClass;
  let deviceClass: SensorClassName | undefined;
  if (isSensorClass(declared) && unitFits(declared, unit)) deviceClass = declared;
  else if (unit !== undefined) {
    const words = wordsOf(e.id, e.name);
    deviceClass = unitRules.find(
      (r) => r.units.includes(unit) && (r.words === undefined || r.words.some((w) => words.has(w))),
    )?.deviceClass;
  }
  const stateClass = deviceClass ? stateClassOf(deviceClass) : unit === undefined ? undefined : 'measurement';
  return {
    ...(unit !== undefined ? { unit } : {}),
    ...(deviceClass ? { deviceClass } : {}),
    ...(stateClass ? { stateClass } : {}),
  };
}
