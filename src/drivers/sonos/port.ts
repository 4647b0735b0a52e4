/** The port every zone player listens on; its own file so the driver's registry entry stays small. */
export const SONOS_PORT = 1400;
