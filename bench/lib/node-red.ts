import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

/** The anchor of the toggle budget; installed beside the bench, never a dependency of hearth. */
export const NODE_RED_SPEC = 'node-red@4.1';

const run = promisify(execFile);

export function nodeRedScript(dir: string): string {
  return path.join(dir, 'node_modules', 'node-red', 'red.js');
}

export function installedVersion(dir: string): string | null {
  const pkg = path.join(dir, 'node_modules', 'node-red', 'package.json');
  if (!existsSync(pkg)) return null;
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

/** Installs Node-RED 4.1.x into `dir` unless a 4.1.x is already there; returns its version. */
export async function ensureNodeRed(dir: string): Promise<string> {
  const have = installedVersion(dir);
  if (have?.startsWith('4.1.')) return have;
  mkdirSync(dir, { recursive: true });
  console.log(`bench: installing ${NODE_RED_SPEC} into ${dir} (once)`);
  await run('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--omit=dev', NODE_RED_SPEC], {
    timeout: 300_000,
    maxBuffer: 10_000_000,
  });
  const got = installedVersion(dir);
  if (!got) throw new Error(`npm install ${NODE_RED_SPEC} left no node-red in ${dir}`);
  return got;
}

const SOAP_HEAD =
  '<?xml version="1.0" encoding="utf-8"?>' +
  '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
  's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>';
const SOAP_TAIL = '</s:Body></s:Envelope>';

/** Function-node source that turns `msg` into a SOAP request for `action`. */
function soapFunction(action: string, valueExpr: string): string {
  return [
    `const value = ${valueExpr};`,
    `msg.payload = '${SOAP_HEAD}<u:${action} xmlns:u="urn:Belkin:service:basicevent:1">' +`,
    `  '<BinaryState>' + value + '</BinaryState></u:${action}>${SOAP_TAIL}';`,
    'msg.headers = {',
    `  'content-type': 'text/xml; charset="utf-8"',`,
    `  soapaction: '"urn:Belkin:service:basicevent:1#${action}"',`,
    `  connection: 'close',`,
    '};',
    'return msg;',
  ].join('\n');
}

/**
 * The toggle flow: http in → build Get → http request → parse, build Set → http request →
 * answer OK (or 502) → http response. Plus `GET /bench-ready` so the bench knows it is up.
 */
export function toggleFlows(simPort: number): unknown[] {
  const url = `http://127.0.0.1:${simPort}/upnp/control/basicevent1`;
  const tab = 'bench-tab';
  const node = (id: string, type: string, wires: string[], extra: Record<string, unknown>) => ({
    id,
    type,
    z: tab,
    name: id,
    x: 100,
    y: 100,
    wires: [wires],
    ...extra,
  });
  const request = (id: string, next: string) =>
    node(id, 'http request', [next], {
      method: 'POST',
      ret: 'txt',
      paytoqs: 'ignore',
      url,
      tls: '',
      persist: false,
      proxy: '',
      insecureHTTPParser: false,
      authType: '',
      senderr: false,
      headers: [],
    });
  const fn = (id: string, func: string, next: string) =>
    node(id, 'function', [next], {
      func,
      outputs: 1,
      timeout: 0,
      noerr: 0,
      initialize: '',
      finalize: '',
      libs: [],
    });
  const checkReply = [
    'if (msg.statusCode !== 200) {',
    `  msg.payload = 'device answered ' + msg.statusCode; msg.statusCode = 502;`,
    `  msg.headers = { 'content-type': 'text/plain; charset=utf-8' };`,
    '  return [null, msg];',
    '}',
  ];
  return [
    { id: tab, type: 'tab', label: 'bench', disabled: false, info: '' },
    node('in-toggle', 'http in', ['build-get'], {
      url: '/api/v0/switches/:id/toggle',
      method: 'post',
      upload: false,
      swaggerDoc: '',
    }),
    fn('build-get', soapFunction('GetBinaryState', "''"), 'get-state'),
    request('get-state', 'build-set'),
    {
      ...fn(
        'build-set',
        [
          ...checkReply,
          'const m = /<BinaryState>(\\d+)/.exec(String(msg.payload));',
          'if (!m) {',
          `  msg.statusCode = 502; msg.payload = 'no BinaryState in the answer';`,
          `  msg.headers = { 'content-type': 'text/plain; charset=utf-8' };`,
          '  return [null, msg];',
          '}',
          soapFunction('SetBinaryState', "m[1] === '0' ? '1' : '0'"),
        ].join('\n'),
        'set-state',
      ),
      outputs: 2,
      wires: [['set-state'], ['respond']],
    },
    request('set-state', 'answer-ok'),
    {
      ...fn(
        'answer-ok',
        [
          ...checkReply,
          `msg.statusCode = 200; msg.payload = 'OK';`,
          `msg.headers = { 'content-type': 'text/plain; charset=utf-8' };`,
          'return [msg, null];',
        ].join('\n'),
        'respond',
      ),
      outputs: 2,
      wires: [['respond'], ['respond']],
    },
    node('respond', 'http response', [], { statusCode: '', headers: {} }),
    node('in-ready', 'http in', ['ready-ok'], {
      url: '/bench-ready',
      method: 'get',
      upload: false,
      swaggerDoc: '',
    }),
    fn('ready-ok', `msg.payload = 'ready'; return msg;`, 'respond'),
  ];
}

/** Writes settings and flows for one Node-RED instance; returns the settings file. */
export function writeNodeRedConfig(userDir: string, port: number, simPort: number): string {
  mkdirSync(userDir, { recursive: true });
  writeFileSync(path.join(userDir, 'flows.json'), `${JSON.stringify(toggleFlows(simPort), null, 2)}\n`);
  const settings = {
    uiPort: port,
    uiHost: '127.0.0.1',
    userDir,
    flowFile: 'flows.json',
    credentialSecret: false,
    httpAdminRoot: false,
    disableEditor: true,
    httpNodeRoot: '/',
    logging: { console: { level: 'warn', metrics: false, audit: false } },
    diagnostics: { enabled: false, ui: false },
    telemetry: { enabled: false },
    runtimeState: { enabled: false, ui: false },
    externalModules: {
      autoInstall: false,
      palette: { allowInstall: false },
      modules: { allowInstall: false },
    },
    functionExternalModules: false,
    editorTheme: { tours: false, projects: { enabled: false } },
  };
  // .cjs: hearth's package.json says "type": "module", and Node-RED require()s its settings.
  const file = path.join(userDir, 'settings.cjs');
  writeFileSync(file, `module.exports = ${JSON.stringify(settings, null, 2)};\n`);
  return file;
}
