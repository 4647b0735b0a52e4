import type { MqttAccess } from '../../core/driver.js';
import type { MqttLink } from './link.js';

/** The link as drivers see it (core/driver.ts MqttAccess): no mqtt.js types leak into drivers. */
export function mqttAccess(link: MqttLink): MqttAccess {
  return {
    subscribe: (filter, handler, owner) =>
      link.subscribe(filter, (m) => handler({ topic: m.topic, payload: m.payload, retain: m.retain }), owner),
    publish: (topic, payload, options = {}) => {
      link.publish(topic, payload, options);
    },
    garbage: (topic, why) => link.countGarbage(topic, why),
    get connected() {
      return link.connected;
    },
    onConnection: (listener) => {
      const up = () => listener(true);
      const down = () => listener(false);
      link.on('up', up);
      link.on('down', down);
      return () => {
        link.off('up', up);
        link.off('down', down);
      };
    },
  };
}
