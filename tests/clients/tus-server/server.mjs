// The tus benchmark's peer (tests/benches/tus.rs): @tus/server with its FileStore, as its
// README sets them up, on 127.0.0.1.
//
// Usage: node server.mjs <port> <directory>
// Port 0 takes a free one. Prints `listening: http://127.0.0.1:<port>/files` once it accepts
// connections. Uploads are stored under <directory>, each as one file plus its `.json` metadata.
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const [port, directory] = process.argv.slice(2);
if (port === undefined || directory === undefined) {
  console.error('usage: node server.mjs <port> <directory>');
  process.exit(2);
}

const server = new Server({
  path: '/files',
  datastore: new FileStore({ directory }),
});
const listener = server.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening: http://127.0.0.1:${listener.address().port}/files`);
});
