/**
 * What a `sensor` entity measures: the Home Assistant sensor device classes hearth uses, each with
 * the units Home Assistant takes for it and the state class of its readings
 * (https://www.home-assistant.io/integrations/sensor/#device-class). Home Assistant refuses a
 * whole discovery config whose unit its device class does not take, so a driver that names a
 * class (`attributes.deviceClass`) is checked against this, and discovery guesses only classes
 * that fit the unit (src/homeassistant/sensor-class.ts).
 */

type StateClass = 'measurement' | 'total_increasing';

interface SensorClass {
  /** The units Home Assistant takes for it; empty: the reading has no unit. */
  units: readonly string[];
  /** Its readings' `state_class`; none for a time (Home Assistant takes none there). */
  stateClass?: StateClass;
}

const measured = (...units: string[]): SensorClass => ({ units, stateClass: 'measurement' });

/**
 * Micro is the Greek small letter mu (U+03BC) in Home Assistant's units; the micro sign (U+00B5),
 * which looks the same and is what most keyboards and firmwares type, is read as it.
 */
const MU = '\u03bc';

export const sensorClasses = {
  temperature: measured('°C', '°F', 'K'),
  humidity: measured('%'),
  /** Soil or material moisture, not the air's. */
  moisture: measured('%'),
  battery: measured('%'),
  /** A length: a water level, a distance sensor. */
  distance: measured('mm', 'cm', 'm', 'km', 'in', 'ft', 'yd', 'mi'),
  /** Rain (or snow) as a depth of water. */
  precipitation: measured('mm', 'cm', 'in'),
  power: measured('mW', 'W', 'kW', 'MW'),
  /** A meter's count, which only grows (a reset starts it again). */
  energy: { units: ['Wh', 'kWh', 'MWh'], stateClass: 'total_increasing' },
  pressure: measured('Pa', 'hPa', 'kPa', 'mbar', 'cbar', 'bar', 'mmHg', 'inHg', 'psi'),
  voltage: measured(`${MU}V`, 'mV', 'V', 'kV'),
  current: measured('mA', 'A'),
  illuminance: measured('lx'),
  carbon_dioxide: measured('ppm'),
  carbon_monoxide: measured('ppm'),
  volatile_organic_compounds: measured(`${MU}g/m³`),
  volatile_organic_compounds_parts: measured('ppm', 'ppb'),
  pm1: measured(`${MU}g/m³`),
  pm25: measured(`${MU}g/m³`),
  pm10: measured(`${MU}g/m³`),
  frequency: measured('Hz', 'kHz', 'MHz', 'GHz'),
  duration: measured('ms', 's', 'min', 'h', 'd'),
  signal_strength: measured('dB', 'dBm'),
  /** A point in time: the state is an ISO 8601 string with its offset. */
  timestamp: { units: [] },
} as const satisfies Record<string, SensorClass>;

export type SensorClassName = keyof typeof sensorClasses;
export const sensorClassNames = Object.keys(sensorClasses) as [SensorClassName, ...SensorClassName[]];

export function isSensorClass(name: unknown): name is SensorClassName {
  return typeof name === 'string' && Object.hasOwn(sensorClasses, name);
}

/** A unit as Home Assistant spells it: the micro sign made the Greek mu. */
export function canonicalUnit(unit: string): string {
  return unit.replaceAll('\u00b5', MU);
}

/** Whether Home Assistant takes `unit` (none: undefined) for sensors of class `name`. */
export function unitFits(name: SensorClassName, unit: string | undefined): boolean {
  const units: readonly string[] = sensorClasses[name].units;
  return unit === undefined ? units.length === 0 : units.includes(canonicalUnit(unit));
}

/** The state class of a class's readings, if it has one. */
export function stateClassOf(name: SensorClassName): StateClass | undefined {
  const c: SensorClass = sensorClasses[name];
  return c.stateClass;
}
