import type { Command } from 'commander';
import { asConfigError } from '../config/errors.js';
import { loadConfigFile, undeclaredRefs } from '../config/load.js';
import { drivers } from '../drivers/index.js';
import { configPath } from './config-path.js';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('validate a config file without starting anything; exits 1 and names file:line on errors')
    .option('-c, --config <file>', 'config file (default: $HEARTH_CONFIG or ./hearth.yaml)')
    .action((opts: { config?: string }) => {
      const path = configPath(opts.config);
      try {
        const cfg = loadConfigFile(path, { drivers });
        // Said out loud, so a token lost to a typo or an empty variable does not go unnoticed.
        const token = cfg.http.token === undefined ? '' : ', control needs the token';
        console.log(
          `${path}: ok — ${cfg.devices.length} device(s), ${cfg.buttons.length} button(s), timezone ${cfg.timezone}${token}`,
        );
        const expected = undeclaredRefs(cfg);
        if (expected.length > 0) {
          console.log(
            `automations name entities expected from zigbee2mqtt (check their spelling; \`curl <hearth>/api/v1/entities\` lists those it found): ${expected.join(', ')}`,
          );
        }
      } catch (caught) {
        const err = asConfigError(caught, path);
        console.error(err.message);
        const located = err.issues.some((i) => i.line > 0);
        console.error(`${err.issues.length} problem(s) found.${located ? ` ${err.hint}` : ''}`);
        process.exitCode = 1;
      }
    });
}
