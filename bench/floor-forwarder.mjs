// The floor for "button press → switch actuated": the least a Node process can do to answer
// `POST /api/v0/switches/<id>/toggle/` by toggling a Wemo plug. Bare node:http, no framework,
// no logging, no store. Every switch id is the one simulated plug at <simHost>:<simPort>, as
// hearth's bench config puts all its switches (lamp, lamp0..lamp15) on one simulator.
// Usage: node floor-forwarder.mjs <simHost> <simPort>
import http from 'node:http';

const [simHost = '127.0.0.1', simPortArg = ''] = process.argv.slice(2);
const simPort = Number(simPortArg);
if (!Number.isInteger(simPort) || simPort <= 0) {
  console.error('usage: node floor-forwarder.mjs <simHost> <simPort>');
  process.exit(2);
}

const route = /^\/api\/v0\/switches\/([A-Za-z0-9_-]{1,64})\/toggle\/?$/;

function envelope(action, value) {
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>' +
    `<u:${action} xmlns:u="urn:Belkin:service:basicevent:1"><BinaryState>${value}</BinaryState></u:${action}>` +
    '</s:Body></s:Envelope>'
  );
}

/** One SOAP call on a fresh connection (real plugs give EOFs on keep-alive). */
function soap(action, value) {
  const body = envelope(action, value);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: simHost,
        port: simPort,
        method: 'POST',
        path: '/upnp/control/basicevent1',
        agent: false,
        headers: {
          'content-type': 'text/xml; charset="utf-8"',
          soapaction: `"urn:Belkin:service:basicevent:1#${action}"`,
          connection: 'close',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => {
          const m = /<BinaryState>(\d+)/.exec(text);
          if (res.statusCode !== 200 || !m) reject(new Error(`${action}: status ${res.statusCode}`));
          else resolve(m[1]);
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(2000, () => req.destroy(new Error(`${action}: timeout`)));
    req.on('error', reject);
    req.end(body);
  });
}

function reply(res, status, text) {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

const server = http.createServer((req, res) => {
  req.resume();
  const m = route.exec(req.url ?? '');
  if (!m) return reply(res, 404, 'not found');
  if (req.method !== 'POST') return reply(res, 405, 'method not allowed');
  soap('GetBinaryState', '')
    .then((state) => soap('SetBinaryState', state === '0' ? '1' : '0'))
    .then(
      () => reply(res, 200, 'OK'),
      (err) => reply(res, 502, String(err.message)),
    );
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  console.log(`floor forwarder listening on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
