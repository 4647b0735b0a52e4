import type { Command } from 'commander';
import { ConfigError } from '../config/errors.js';
import { reasonOf } from '../core/errors.js';
import { configPath } from './config-path.js';

interface RenderOpts {
  config?: string;
  out: string;
  check?: boolean;
  withSecrets?: boolean;
}

export function registerKube(program: Command): void {
  const kube = program.command('kube').description('Kubernetes manifests for the roles of a cluster');
  kube
    .command('render')
    .description(
      'write a kustomize directory (Deployments, Services, NetworkPolicies, PostgreSQL, Mosquitto) from hearth.yaml and its cluster.kubernetes section',
    )
    .option('-c, --config <file>', 'config file (default: $HEARTH_CONFIG or ./hearth.yaml)')
    .option('-o, --out <dir>', 'the directory to write', 'deploy')
    .option(
      '--check',
      'write nothing: exit 1 and show the difference if the directory is not what would be rendered',
    )
    .option(
      '--with-secrets',
      'also write secret.yaml (git-ignored) with the values of the variables the config references, from the environment',
    )
    .action(async (opts: RenderOpts) => {
      const path = configPath(opts.config);
      const withSecrets = opts.withSecrets === true;
      try {
        // Loaded only here: `hearth start` never parses the Kubernetes models.
        const { renderKube, writeRendered, checkRendered, readPreviousSecret, KubeRenderError } =
          await import('../kube/render.js');
        let files: Map<string, string>;
        try {
          // The broker's generated passwords stay what they were (a new one for a new user only).
          const previousSecret = withSecrets ? readPreviousSecret(opts.out) : undefined;
          files = renderKube(path, { withSecrets, previousSecret });
        } catch (err) {
          if (err instanceof KubeRenderError) {
            console.error(`hearth kube render: ${err.message}`);
            process.exitCode = 1;
            return;
          }
          throw err;
        }
        if (opts.check) {
          const diff = checkRendered(opts.out, files, withSecrets);
          if (diff) {
            console.log(diff);
            console.error(
              `${opts.out} differs from what ${path} renders: run \`hearth kube render\` and commit the result`,
            );
            process.exitCode = 1;
          } else console.log(`${opts.out} is up to date with ${path}`);
          return;
        }
        writeRendered(opts.out, files, withSecrets);
        if (withSecrets) {
          // secret.yaml is git-ignored and not in kustomization.yaml: it goes in first, on its own.
          console.log(
            `wrote ${files.size} files to ${opts.out}; apply the Secrets first, then the folder:\n` +
              `  kubectl apply -f ${opts.out}/namespace.yaml -f ${opts.out}/secret.yaml\n` +
              `  kubectl apply -k ${opts.out}`,
          );
        } else {
          console.log(`wrote ${files.size} files to ${opts.out}; apply with: kubectl apply -k ${opts.out}`);
          const example = files.get('secret.example.yaml') ?? '';
          const tls = example.includes('name: hearth-mqtt-tls');
          const users = example.includes('name: hearth-mqtt\n');
          console.log(
            tls
              ? `the Secrets hearth-env and hearth-mqtt-tls (the MQTT TLS files) are not among them: see ${opts.out}/secret.example.yaml for the kubectl commands, or render with --with-secrets`
              : users
                ? `the Secrets hearth-env and hearth-mqtt (the broker's users) are not among them: see ${opts.out}/secret.example.yaml for the kubectl commands, or render with --with-secrets`
                : `the Secret is not among them: see ${opts.out}/secret.example.yaml, or render with --with-secrets`,
          );
        }
      } catch (err) {
        // A config problem names file:line; anything else is one line, never a stack trace.
        if (err instanceof ConfigError) console.error(err.message);
        else console.error(`hearth kube render: ${reasonOf(err)}`);
        process.exitCode = 1;
      }
    });
}
