// http_server.js: an HTTP server on 127.0.0.1 (port 0: the kernel picks one), a
// setInterval timer that prints `count N` every 50 ms, and an fs.watch watcher on the
// file WATCHED. Prints `port P` once listening; every request is answered with
// `ticks N changes C`, C being the change events the watcher saw.
// usage: node http_server.js WATCHED
'use strict';
const http = require('http');
const fs = require('fs');

let ticks = 0;
let changes = 0;
fs.watch(process.argv[2], () => { changes++; });
setInterval(() => {
    ticks++;
    console.log('count ' + ticks);
}, 50);
const server = http.createServer((req, res) => res.end(`ticks ${ticks} changes ${changes}\n`));
server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
