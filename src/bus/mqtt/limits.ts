/**
 * The largest MQTT payload hearth takes, on any topic: 8 MiB, the size of a zigbee2mqtt
 * `bridge/devices` list of about 1000 devices (its biggest message by far). Every handler has a
 * smaller cap of its own (a command 4 kB, a zigbee state 64 kB, an mqtt_things payload 1 kB).
 */
export const maxPayloadBytes = 8 * 1024 * 1024;

/**
 * What hearth advertises to the broker as its MQTT 5 Maximum Packet Size: twice
 * {@link maxPayloadBytes}. A broker never sends a packet over the advertised size and tells the
 * client nothing (Mosquitto logs `Dropping too large outgoing PUBLISH for <clientId>` on its
 * side), so advertising exactly the cap would make a device list a little over it vanish
 * without a word. With room above the cap, such a message reaches hearth, which logs it with its
 * topic and counts it (`hearth_mqtt_oversize_total`); only one over twice the cap is left to the
 * broker's log.
 */
export function advertisedPacketBytes(maxPayload: number): number {
  return 2 * maxPayload;
}
