import { existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { waitFor200 } from './load.js';
import { type Proc, start, stop, waitForLine } from './procs.js';

export interface SwitchSpec {
  id: string;
  simPort: number;
  /** Omitted: hearth's default polling. */
  pollSeconds?: number;
}

/** `{ id, triggers: [{ state, to }], actions: [{ command }] }`: one state trigger, one command. */
export interface AutomationSpec {
  id: string;
  state: string;
  to: string;
  /** `<entity id>.<command>`, e.g. lamp.toggle. */
  command: string;
}

export interface HearthConfig {
  port: number;
  dbPath: string;
  switches: SwitchSpec[];
  buttons: string[];
  automations?: AutomationSpec[];
}

/** hearth.yaml for a bench run, in the shape of DESIGN.md's config. */
export function hearthYaml(c: HearthConfig): string {
  const lines = [
    'timezone: America/Los_Angeles',
    `http: { port: ${c.port}, host: 127.0.0.1 }`,
    `storage: { sqlite: ${JSON.stringify(c.dbPath)} }`,
  ];
  if (c.switches.length) {
    lines.push('switches:');
    for (const s of c.switches) {
      const poll = s.pollSeconds === undefined ? '' : `, pollSeconds: ${s.pollSeconds}`;
      const name = s.id.replace(/^./, (ch) => ch.toUpperCase());
      lines.push(
        `  - { id: ${s.id}, kind: wemo/v1, name: ${name}, address: 127.0.0.1, port: ${s.simPort}${poll} }`,
      );
    }
  }
  if (c.buttons.length) {
    lines.push('buttons:');
    for (const b of c.buttons)
      lines.push(`  - { id: ${b}, name: ${b.replace(/^./, (ch) => ch.toUpperCase())} }`);
  }
  if (c.automations?.length) {
    lines.push('automations:');
    for (const a of c.automations)
      lines.push(
        `  - { id: ${a.id}, triggers: [{ state: ${a.state}, to: ${JSON.stringify(a.to)} }], actions: [{ command: ${a.command} }] }`,
      );
  }
  return `${lines.join('\n')}\n`;
}

export function hearthBin(root: string): string {
  return path.join(root, 'bin', 'hearth.js');
}

/** Whether the built CLI is there at all (the lead may not have written it yet). */
export function hearthBuilt(root: string): boolean {
  return existsSync(hearthBin(root)) && existsSync(path.join(root, 'dist', 'hearth.mjs'));
}

export interface Sim {
  proc: Proc;
  port: number;
}

const SIM_LINE = /listening on 127\.0\.0\.1:(\d+)/;

/** Starts `hearth sim wemo` on 127.0.0.1 and an ephemeral port. */
export async function startSim(root: string, name: string): Promise<Sim> {
  const args = [hearthBin(root), 'sim', 'wemo', '--host', '127.0.0.1', '--port', '0'];
  const proc = start(name, process.execPath, args, root);
  try {
    const m = await waitForLine(proc, SIM_LINE, 10_000);
    return { proc, port: Number(m[1]) };
  } catch (err) {
    await stop(proc);
    throw err;
  }
}

export interface RunningHearth {
  proc: Proc;
  port: number;
  /** From spawn to the first 200 of /readyz. */
  readyMs: number;
}

/** Spawns `hearth start --config <file>` from the built dist and waits for /readyz. */
export async function startHearth(
  root: string,
  name: string,
  configFile: string,
  port: number,
  timeoutMs = 15_000,
): Promise<RunningHearth> {
  const t0 = performance.now();
  const proc = start(name, process.execPath, [hearthBin(root), 'start', '--config', configFile], root);
  try {
    await waitFor200(port, '/readyz', timeoutMs, 5, () => !proc.hasExited());
  } catch (err) {
    await stop(proc);
    const tail = proc.tail.length ? `\n  last output of ${name}:\n    ${proc.tail.join('\n    ')}` : '';
    throw new Error(`${name}: ${(err as Error).message}${tail}`);
  }
  return { proc, port, readyMs: performance.now() - t0 };
}

export function writeConfig(dir: string, file: string, c: HearthConfig): string {
  const full = path.join(dir, file);
  writeFileSync(full, hearthYaml(c));
  return full;
}

/** Reads a simulator's state with one GetBinaryState call, as a device client would. */
export function simState(port: number): Promise<'0' | '1'> {
  const body =
    '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>' +
    '<u:GetBinaryState xmlns:u="urn:Belkin:service:basicevent:1"><BinaryState></BinaryState></u:GetBinaryState>' +
    '</s:Body></s:Envelope>';
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/upnp/control/basicevent1',
        agent: false,
        headers: {
          'content-type': 'text/xml; charset="utf-8"',
          soapaction: '"urn:Belkin:service:basicevent:1#GetBinaryState"',
          connection: 'close',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          const m = /<BinaryState>(\d+)/.exec(text);
          if (res.statusCode !== 200 || !m?.[1]) {
            reject(new Error(`simulator on port ${port} answered ${res.statusCode}: ${text.slice(0, 80)}`));
          } else resolve(m[1] === '0' ? '0' : '1');
        });
      },
    );
    req.setTimeout(2000, () => req.destroy(new Error(`simulator on port ${port}: no answer in 2 s`)));
    req.on('error', reject);
    req.end(body);
  });
}
