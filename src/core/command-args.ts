import { commandNames, commandSchema, type Kind } from '../contract/kinds.js';
import { HearthError } from './errors.js';

/**
 * Checks a command against its kind's catalogue entry and answers its parsed arguments. Throws
 * HearthError: an unknown command (naming the ones the kind takes), or bad arguments. Every
 * runtime checks here, so a bad request is a 400 at once wherever the device is.
 */
export function parseCommand(kind: Kind, id: string, name: string, args: unknown): unknown {
  const schema = commandSchema(kind, name);
  if (!schema) {
    throw new HearthError(
      'HEARTH_ERR_UNKNOWN_COMMAND',
      `${kind} "${id}" has no command "${name}"; it takes ${commandNames(kind).join(', ') || 'none'}`,
    );
  }
  const parsed = schema.safeParse(args ?? {});
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => i.message).join('; ');
    throw new HearthError('HEARTH_ERR_BAD_ARGUMENTS', `bad arguments for ${id}.${name}: ${detail}`);
  }
  return parsed.data;
}
