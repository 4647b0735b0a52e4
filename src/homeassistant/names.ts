/**
 * Names and entity ids as Home Assistant makes them. An entity of a device is shown as the
 * device's name followed by its own (https://developers.home-assistant.io/docs/core/entity/#entity-naming):
 * a device's main entity has none (`name: null`: the lamp is just "Living room lamp"), every other
 * one only its own part ("Water", not "Coffee pot water").
 */

/** Letters that do not come apart into a letter and an accent, spelt as Home Assistant's slugify spells them. */
const spelt: Readonly<Record<string, string>> = {
  ß: 'ss',
  æ: 'ae',
  œ: 'oe',
  ø: 'o',
  ł: 'l',
  đ: 'd',
  ð: 'd',
  þ: 'th',
};

/**
 * `Living Room Lamp` → `living_room_lamp`, as Home Assistant makes the object id of an entity id:
 * accents dropped, lower case, every run of other characters one `_`, none at either end.
 * Empty when nothing is left.
 */
export function slugOf(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[ßæœøłđðþ]/g, (c) => spelt[c] ?? '_')
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/** `switch.living_room_lamp`: what Home Assistant names a new entity (`default_entity_id`). */
export function defaultEntityId(component: string, name: string, fallback: string): string {
  return `${component}.${slugOf(name) || slugOf(fallback) || 'hearth'}`;
}

/**
 * The name Home Assistant shows for an entity of a device: null for the device's main entity, else
 * its own part. hearth names a device's other entities `<device name> <part>` (`Coffee pot water`,
 * `Garden front`): the part is what follows the device's name, with a capital (`Water`). A name
 * that does not start with the device's is the entity's own already; one that is the device's
 * name is null too.
 */
export function nameInDevice(entityName: string, deviceName: string, main: boolean): string | null {
  if (main) return null;
  const prefix = `${deviceName} `;
  const own =
    entityName.toLowerCase().startsWith(prefix.toLowerCase()) && entityName.length > prefix.length
      ? entityName.slice(prefix.length).trim()
      : entityName;
  // Named as the device itself: Home Assistant shows the device's name for it, as for the main one.
  if (own.toLowerCase() === deviceName.toLowerCase()) return null;
  return own.charAt(0).toUpperCase() + own.slice(1);
}
