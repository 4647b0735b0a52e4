#!/usr/bin/env node
import { Command } from 'commander';
import { hearthVersion } from '../version.js';
import { registerBackup } from './backup.js';
import { registerCheck } from './check.js';
import { registerConfigstack } from './configstack.js';
import { registerImport } from './import.js';
import { registerKube } from './kube.js';
import { registerMedia } from './media.js';
import { registerSim } from './sim.js';
import { registerStart } from './start.js';
import { registerStatus } from './status.js';

const program = new Command()
  .name('hearth')
  .description('Home automation for people who run their own small computers.')
  .version(hearthVersion)
  .showHelpAfterError()
  // A subcommand's options are its own: `hearth backup verify X --json` is verify's --json,
  // not the --json of `hearth backup`.
  .enablePositionalOptions();

registerStart(program);
registerCheck(program);
registerStatus(program);
registerSim(program);
registerImport(program);
registerMedia(program);
registerKube(program);
registerConfigstack(program);
registerBackup(program);

await program.parseAsync(process.argv);
