import type { Command } from 'commander';
import type { Driver } from '../core/driver.js';
import { reasonOf } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { drivers } from '../drivers/index.js';

/** A driver by its name (`wemo`) or, when one driver has it, by its config section (`coffee`). */
function findSimulated(name: string): Driver | undefined {
  const simulated = drivers.filter((d) => d.simulator);
  const bySection = simulated.filter((d) => d.section === name);
  return simulated.find((d) => d.name === name) ?? (bySection.length === 1 ? bySection[0] : undefined);
}

export function registerSim(program: Command): void {
  const simulated = drivers.filter((d) => d.simulator);
  const names = simulated.map((d) =>
    d.section === 'switches' || d.section === d.name ? d.name : `${d.section} (${d.name})`,
  );
  program
    .command('sim')
    .description(`run a simulated device that speaks the real protocol: ${names.join(', ')}`)
    .argument('<device>', `one of: ${names.join(', ')}`)
    .option('--host <address>', 'network devices: address to listen on', '127.0.0.1')
    .option('-p, --port <n>', "network devices: port (default: the real device's; 0: any free port)", (v) =>
      Number.parseInt(v, 10),
    )
    .option('--path <file>', 'serial devices: where to put the device end of the pseudo-terminal')
    .option(
      '--mqtt <url>',
      'MQTT devices (zigbee2mqtt): the broker to publish on, e.g. mqtt://127.0.0.1:1883',
    )
    .option(
      '--base-topic <topic>',
      "zigbee2mqtt: its base topic (zigbee2mqtt's mqtt.base_topic)",
      'zigbee2mqtt',
    )
    .action(
      async (
        device: string,
        opts: { host: string; port?: number; path?: string; mqtt?: string; baseTopic: string },
      ) => {
        const driver = findSimulated(device);
        if (!driver?.simulator) {
          console.error(`hearth sim: no simulator named "${device}"; choose one of: ${names.join(', ')}`);
          process.exitCode = 2;
          return;
        }
        const log = createLogger(process.env.HEARTH_LOG_LEVEL ?? 'warn');
        let sim: Awaited<ReturnType<typeof driver.simulator.start>>;
        try {
          sim = await driver.simulator.start({
            host: opts.host,
            port: opts.port ?? driver.simulator.defaultPort ?? 0,
            path: opts.path ?? `/tmp/hearth-sim-${driver.name}`,
            log,
            ...(opts.mqtt ? { mqttUrl: opts.mqtt } : {}),
            baseTopic: opts.baseTopic,
          });
        } catch (err) {
          console.error(`hearth sim: ${reasonOf(err)}`);
          process.exitCode = 1;
          return;
        }
        // Listening before saying where: a test (or a script) stops it as soon as it has read that.
        const stop = () => {
          void sim.close().then(() => process.exit(0));
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        if (driver.simulator.transport === 'serial') {
          console.log(`${device} simulator on serial device ${sim.path} (point the config's path at it)`);
        } else if (driver.simulator.transport === 'mqtt') {
          console.log(
            `${device} simulator publishing on ${opts.mqtt} under ${opts.baseTopic}/ (a remote, a plug, sensors, a door, a lamp)`,
          );
        } else {
          console.log(`${device} simulator listening on ${sim.host}:${sim.port}`);
        }
      },
    );
}
