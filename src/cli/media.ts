import { constants, copyFileSync, mkdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../config/errors.js';
import { loadConfigFile } from '../config/load.js';
import { reasonOf } from '../core/errors.js';
import { drivers } from '../drivers/index.js';
import { contentTypeOf, exampleUrl, isPlainFileName } from '../media/library.js';
import { configPath } from './config-path.js';

interface AddOptions {
  config?: string;
  name?: string;
  force?: boolean;
}

function fail(message: string, code = 1): void {
  console.error(`hearth media add: ${message}`);
  process.exitCode = code;
}

export function registerMedia(program: Command): void {
  const media = program.command('media').description('the chime files that speakers play');
  media
    .command('add')
    .description("copy an audio file into the config's media folder, where speakers fetch it")
    .argument('<file>', 'the audio file, e.g. swed.mp3')
    .option('-c, --config <file>', 'config file (default: $HEARTH_CONFIG or ./hearth.yaml)')
    .option('--name <name>', "its name in the media folder (default: the file's own name)")
    .option('-f, --force', 'replace a file of that name')
    .action((file: string, opts: AddOptions) => add(file, opts));
}

function add(file: string, opts: AddOptions): void {
  const path = configPath(opts.config);
  let cfg: ReturnType<typeof loadConfigFile>;
  try {
    cfg = loadConfigFile(path, { drivers });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    fail(`the config ${path} has problems; fix them first (\`hearth check\` lists them)`);
    return;
  }

  const name = opts.name ?? basename(file);
  if (!isPlainFileName(name)) {
    fail(
      `${JSON.stringify(name)} is not a plain file name (no / or \\, no leading dot, no control characters, at most 255 bytes); pass --name NAME`,
      2,
    );
    return;
  }
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) {
      fail(`${file} is not a file`);
      return;
    }
    size = st.size;
  } catch (err) {
    fail(`cannot read ${file}: ${reasonOf(err)}`);
    return;
  }

  const dir = cfg.media.dir;
  const dest = join(dir, name);
  try {
    mkdirSync(dir, { recursive: true });
    let exists = false;
    try {
      exists = statSync(dest).isFile();
      if (exists && realpathSync(dest) === realpathSync(file)) {
        console.log(`${name} is already in the media folder ${dir}`);
        printUrl(name, cfg);
        return;
      }
    } catch {
      // Not there yet.
    }
    if (exists && !opts.force) {
      fail(`${dest} already exists; pass --force to replace it, or --name to pick another name`);
      return;
    }
    // Copied beside it under a hidden name (never served), then renamed: a speaker fetching the
    // chime meanwhile gets the old file or the new one, never half of one.
    const temp = join(dir, `.${name}.${process.pid}.tmp`);
    try {
      copyFileSync(file, temp, constants.COPYFILE_FICLONE);
      renameSync(temp, dest);
    } finally {
      rmSync(temp, { force: true });
    }
  } catch (err) {
    fail(`cannot copy ${file} to ${dest}: ${reasonOf(err)}`);
    return;
  }
  console.log(`added ${name} (${size} bytes) to ${dir}`);
  if (contentTypeOf(name) === 'application/octet-stream') {
    console.error(
      `warning: ${name} has no audio file extension; speakers may not play it (mp3 always works)`,
    );
  }
  printUrl(name, cfg);
}

function printUrl(name: string, cfg: ReturnType<typeof loadConfigFile>): void {
  console.log(`served at ${exampleUrl(name, cfg.media.baseUrl, cfg.http)}`);
  if (!cfg.media.baseUrl) {
    console.log(
      "  (each speaker is given this box's address on its own network; behind NAT or in a pod, set media.baseUrl)",
    );
  }
  const speaker = cfg.devices.find((d) => d.driver.section === 'speakers')?.config.id ?? '<speaker>';
  console.log(`play it: an automation action { command: ${speaker}.play, args: { media: ${name} } }`);
}
