import { type Command, Option } from 'commander';
import { type Role, startHearth } from '../compose.js';
import { asConfigError } from '../config/errors.js';
import { type HearthConfig, loadConfigFile } from '../config/load.js';
import { reasonOf } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';
import { drivers } from '../drivers/index.js';
import { configPath, demoConfigPath } from './config-path.js';
import { connectSystemd, type SystemdNotifier } from './systemd.js';

export function registerStart(program: Command): void {
  program
    .command('start')
    .description(
      'run hearth: every role in this process (the default, one box), or one role of a cluster (--role)',
    )
    .option('-c, --config <file>', 'config file (default: $HEARTH_CONFIG or ./hearth.yaml)')
    .option('--demo', 'run the demo config: simulated devices on loopback, no hardware needed')
    .addOption(
      new Option(
        '--role <role>',
        'all: one box; api, controller, agent: one role of a cluster (needs storage.postgres and mqtt)',
      )
        .choices(['all', 'api', 'controller', 'agent'])
        .default('all'),
    )
    .option('--agent <name>', 'with --role agent: the agent name whose devices this process may run', 'main')
    .action(async (opts: { config?: string; demo?: boolean; role: Role; agent: string }) => {
      const path = opts.demo ? demoConfigPath : configPath(opts.config);
      let config: HearthConfig;
      try {
        config = loadConfigFile(path, { drivers });
      } catch (caught) {
        // Never a stack trace: it could quote a config value, and those can be secrets.
        const err = asConfigError(caught, path);
        console.error(err.message);
        if (err.issues.some((i) => i.line > 0)) console.error(err.hint);
        process.exitCode = 1;
        return;
      }
      const log = createLogger(process.env.HEARTH_LOG_LEVEL ?? config.log.level);
      let systemd: SystemdNotifier;
      try {
        systemd = connectSystemd(process.env, log);
      } catch (err) {
        console.error(`hearth could not start: ${reasonOf(err)}`);
        process.exitCode = 1;
        return;
      }
      // Before anything starts: a SIGTERM that arrives while devices come up (or just after
      // "ready" is printed) must still stop them cleanly, never kill the process mid-way.
      const stopWith = onSignals(log, () => systemd.stopping());
      let hearth: Awaited<ReturnType<typeof startHearth>>;
      try {
        hearth = await startHearth(config, { log, role: opts.role, agent: opts.agent });
      } catch (err) {
        console.error(`hearth could not start: ${reasonOf(err)}`);
        systemd.close();
        process.exitCode = 1;
        return;
      }
      const { role, agent } = opts;
      log.info(
        {
          ...(role === 'all' ? {} : { role }),
          ...(role === 'agent' ? { agent } : {}),
          url: hearth.url,
          publicUrl: hearth.publicUrl,
          metricsUrl: hearth.metricsUrl,
          config: config.file,
          startupMs: Math.round(performance.now()),
        },
        'ready',
      );
      stopWith(() => hearth.stop());
      systemd.ready(`ready on ${hearth.url}${role === 'all' ? '' : ` (role ${role})`}`);
      if (role === 'all')
        printWelcome(hearth.url, hearth.publicUrl, hearth.metricsUrl, config, Boolean(opts.demo));
      else
        process.stderr.write(
          `hearth is ready on ${hearth.url} (role ${role}${role === 'agent' ? ` ${agent}` : ''}; health on /healthz and /readyz, leadership in /metrics and /api/v1/cluster)\n`,
        );
    });
}

/**
 * Listens for SIGINT and SIGTERM from now on, and returns the function that says how to stop
 * once there is something running. The first signal stops it (at once, or as soon as start-up
 * has finished); a second one exits at once.
 */
function onSignals(log: Logger, stopping: () => void): (stop: () => Promise<void>) => void {
  let signals = 0;
  let stop: (() => Promise<void>) | undefined;
  let pending = false;
  const run = (fn: () => Promise<void>) => {
    void fn().then(
      () => process.exit(0),
      (err) => {
        log.error({ err: reasonOf(err) }, 'stop failed');
        process.exit(1);
      },
    );
  };
  const shutdown = (signal: string) => {
    signals++;
    if (signals > 1) process.exit(1);
    log.info({ signal }, 'stopping');
    stopping();
    if (stop) run(stop);
    else pending = true;
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  return (fn) => {
    stop = fn;
    if (pending) run(fn);
  };
}

function printWelcome(
  url: string,
  publicUrl: string | undefined,
  metricsUrl: string | undefined,
  config: HearthConfig,
  demo: boolean,
): void {
  const sw = config.devices.find((d) => d.driver.section === 'switches')?.config.id ?? 'lamp';
  const button = config.buttons[0]?.id ?? 'bedside';
  // The token itself is never printed: the user has it, and output ends up in journals.
  const auth = config.http.token === undefined ? '' : " -H 'Authorization: Bearer <token>'";
  const lines = [
    '',
    `hearth is ready on ${url}${demo ? ' (demo: simulated devices on loopback)' : ''}`,
    ...(publicUrl ? [`public status page (read-only) on ${publicUrl}`] : []),
    'Try:',
    `  curl${auth} -X POST ${url}/api/v0/switches/${sw}/toggle/`,
    `  curl${auth} -X POST ${url}/api/v0/buttons/${button}/on/`,
    `  curl${auth} ${url}/api/v0/buttons/${button}/`,
    `  curl${auth} ${url}/api/v0/clocktime/`,
    `  curl ${publicUrl ?? url}/api/v1/entities`,
    `  curl -N ${publicUrl ?? url}/api/v1/events`,
    metricsUrl ? `  curl ${metricsUrl}/metrics` : `  curl${auth} ${url}/metrics`,
    `Status page: ${publicUrl ?? url}/`,
    'Stop with Ctrl-C.',
    '',
  ];
  // stderr: stdout carries only the JSON log lines, for journald, jq and log shippers.
  process.stderr.write(`${lines.join('\n')}\n`);
}
