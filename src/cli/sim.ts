import type { Command } from 'commander';
import { createLogger } from '../core/log.js';
import { drivers } from '../drivers/index.js';

export function registerSim(program: Command): void {
  const names = drivers.filter((d) => d.simulator).map((d) => d.name);
  program
    .command('sim')
    .description(`run a simulated device that speaks the real protocol (${names.join(', ')})`)
    .argument('<device>', `one of: ${names.join(', ')}`)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('-p, --port <n>', "port to listen on (default: the real device's; 0: any free port)", (v) =>
      Number.parseInt(v, 10),
    )
    .action(async (device: string, opts: { host: string; port?: number }) => {
      const driver = drivers.find((d) => d.name === device);
      if (!driver?.simulator) {
        console.error(`hearth sim: no simulator named "${device}"; choose one of: ${names.join(', ')}`);
        process.exitCode = 2;
        return;
      }
      const log = createLogger(process.env.HEARTH_LOG_LEVEL ?? 'warn');
      const sim = await driver.simulator.start({
        host: opts.host,
        port: opts.port ?? driver.simulator.defaultPort,
        log,
      });
      console.log(`${device} simulator listening on ${sim.host}:${sim.port}`);
      const stop = () => {
        void sim.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
