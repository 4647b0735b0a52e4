// The floor for the SSE fan-out (bench/lib/web.ts): bare node:http. `GET /api/v1/events` takes
// the socket over as hearth does (head, `retry:`, then frames written on the socket itself);
// `POST /api/v0/buttons/<id>/<on|off>/` encodes one frame, writes it to every stream, and
// answers OK. No store, no journal, no pacing: what fanning a line out to N sockets costs.
import http from 'node:http';

const head = Buffer.from(
  'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n' +
    'connection: close\r\n\r\nretry: 2000\n\n',
  'latin1',
);
const streams = new Set();
const press = /^\/api\/v0\/buttons\/([A-Za-z0-9_-]{1,64})\/(on|off)\/?$/;
let seq = 0;

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/api/v1/events') {
    const socket = req.socket;
    socket.setNoDelay(true);
    socket.write(head);
    streams.add(socket);
    socket.on('close', () => streams.delete(socket));
    return;
  }
  const m = req.method === 'POST' ? press.exec(req.url ?? '') : null;
  req.resume();
  if (!m) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found');
    return;
  }
  seq += 1;
  const data = JSON.stringify({ id: m[1], kind: 'button', state: m[2], updatedAt: Date.now() });
  const frame = Buffer.from(`id: ${seq}\nevent: state\ndata: ${data}\n\n`);
  for (const s of streams) s.write(frame);
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 2 });
  res.end('OK');
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  console.log(`floor fanout listening on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => {
  for (const s of streams) s.destroy();
  server.close(() => process.exit(0));
});
