// The floor for `GET /api/v0/clocktime/`: bare node:http answering HHMM in a timezone.
// Usage: node floor-clocktime.mjs [timeZone]
import http from 'node:http';

const timeZone = process.argv[2] ?? 'America/Los_Angeles';
const fmt = new Intl.DateTimeFormat('en-GB', {
  timeZone,
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});
const route = /^\/api\/v0\/clocktime\/?$/;

function clocktime() {
  let hh = '00';
  let mm = '00';
  for (const part of fmt.formatToParts(Date.now())) {
    if (part.type === 'hour') hh = part.value;
    else if (part.type === 'minute') mm = part.value;
  }
  return hh + mm;
}

const server = http.createServer((req, res) => {
  req.resume();
  if (req.method !== 'GET' || !route.test(req.url ?? '')) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found');
    return;
  }
  const body = clocktime();
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
  res.end(body);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  console.log(`floor clocktime listening on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
