/**
 * What `hearth start` parses before it knows the config: the built entry module and the chunks
 * it imports statically. What only some configs use (a driver's client, node-ical, the serial
 * stack, prom-client) must sit behind a dynamic import(), or every start pays for it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from './support/cli-run.js';

const run = promisify(execFile);

/** Text of every file reachable from `entry` by static `import ... from "./x.mjs"`. */
function staticClosure(entry: string): Map<string, string> {
  const seen = new Map<string, string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    const text = readFileSync(file, 'utf8');
    seen.set(file, text);
    // `from"./x.mjs"` and bare `import"./x.mjs"`; a dynamic `import("./x.mjs")` is not followed.
    for (const m of text.matchAll(/(?:\bfrom|\bimport)\s*["'](\.\.?\/[^"']+)["']/g)) {
      visit(resolve(dirname(file), m[1] as string));
    }
  };
  visit(entry);
  return seen;
}

/** Strings that only the lazily loaded parts contain. */
const markers = {
  'the serial stack': /from\s*"serialport"/,
  // Bundled, its text is in a chunk; kept external, its import is.
  'node-ical': /BEGIN:VCALENDAR|from\s*"node-ical"/,
  'prom-client': /process_resident_memory_bytes/,
  "the Wemo client's SOAP": /SetBinaryState/,
  "the Kasa client's XOR cipher": /get_sysinfo/,
  "the Sonos client's SOAP": /SetAVTransportURI/,
  "the coffee pot's loop": /lost confidence, heater off/,
  // One box (--role all) never loads the cluster: neither the MQTT client nor the MQTT link
  // between the services (src/mqtt-link/); its services run over the in-process link.
  'the MQTT client (mqtt.js)': /MQTT_PROTOCOL|mqtt\.js|protocolVersion/,
  "the cluster's MQTT link": /not a leader record/,
  'Home Assistant discovery': /json_attributes_template/,
  'the PostgreSQL client': /import\("pg"\)|from\s*"pg"/,
  // `hearth kube render` only: the Kubernetes models and their JSON schemas.
  'the Kubernetes renderer': /io\.k8s\.api\.apps\.v1\.Deployment|hearth-kube-render/,
  // `hearth configstack` loads its work only when it runs.
  'the configstack commands': /no free entry in the configstack/,
};

describe('the built CLI loads what a config does not use lazily', () => {
  let out: string;
  let eager: string;
  let all: string;

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'hearth-build-'));
    await run(process.execPath, ['scripts/build.mjs', '--outdir', out], { cwd: repoRoot });
    const closure = staticClosure(join(out, 'hearth.mjs'));
    eager = [...closure.values()].join('\n');
    const chunks = readdirSync(join(out, 'chunks')).filter((f) => f.endsWith('.mjs'));
    all = [join(out, 'hearth.mjs'), ...chunks.map((f) => join(out, 'chunks', f))]
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
  }, 60_000);

  afterAll(() => rmSync(out, { recursive: true, force: true }));

  for (const [what, re] of Object.entries(markers)) {
    it(`keeps ${what} out of what every start parses`, () => {
      // The marker must exist somewhere, or this test would pass for the wrong reason.
      expect(all).toMatch(re);
      expect(eager).not.toMatch(re);
    });
  }
});
