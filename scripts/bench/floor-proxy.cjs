// The floor for any Node proxy: a minimal node:http pass-through (keep-alive both sides, body piped,
// no parsing). What the real proxy adds on top of this is the cost of its features.
// argv[2]: upstream origin, e.g. http://127.0.0.1:1234. Sends {url} to the parent over IPC.
const http = require('node:http');

const upstream = new URL(process.argv[2]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, scheduling: 'lifo' });

const server = http.createServer({ keepAlive: true, requestTimeout: 0 }, (req, res) => {
  const headers = { ...req.headers, host: upstream.host };
  delete headers.connection;
  const out = http.request({ hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers, agent }, (up) => {
    const h = { ...up.headers };
    delete h.connection;
    delete h['keep-alive'];
    res.writeHead(up.statusCode ?? 502, h);
    up.pipe(res);
  });
  out.on('error', () => res.destroy());
  res.on('close', () => {
    if (!res.writableFinished) out.destroy();
  });
  req.pipe(out);
});
server.keepAliveTimeout = 65_000;
server.on('connection', (s) => s.setNoDelay(true));
server.listen(0, '127.0.0.1', () => {
  process.send({ url: `http://127.0.0.1:${server.address().port}` });
});
process.on('disconnect', () => process.exit(0));
