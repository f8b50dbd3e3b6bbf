import net from 'node:net';

/**
 * The docker CLI's stand-in (docker-cli.ts serves it): its arguments, directory and COMPOSE_FILE to the socket,
 * then its stdin; back come frames of stdout, stderr and, last, the exit status. Nothing but Node's own modules:
 * it runs as the `docker` a script calls.
 */

export const SOCKET = 'TELEINFO_DOCKER_SOCKET';
export const STDOUT = 1;
export const STDERR = 2;
export const EXIT = 3;

export function frame(channel: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = channel;
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

function client(): void {
  const socket = net.connect(process.env[SOCKET] ?? '');
  socket.on('error', (err) => {
    process.stderr.write(`docker (stand-in): ${err.message}\n`);
    process.exit(125);
  });
  socket.write(
    `${JSON.stringify({ argv: process.argv.slice(2), cwd: process.cwd(), composeFile: process.env.COMPOSE_FILE })}\n`,
  );
  process.stdin.pipe(socket);
  let buffer = Buffer.alloc(0);
  socket.on('data', (data: Buffer) => {
    buffer = Buffer.concat([buffer, data]);
    while (buffer.length >= 5 && buffer.length >= 5 + buffer.readUInt32BE(1)) {
      const body = buffer.subarray(5, 5 + buffer.readUInt32BE(1));
      const channel = buffer[0];
      buffer = buffer.subarray(5 + body.length);
      if (channel === STDOUT) process.stdout.write(body);
      else if (channel === STDERR) process.stderr.write(body);
      else if (channel === EXIT) {
        const status = body.readInt32BE(0);
        process.stdout.write('', () => process.stderr.write('', () => process.exit(status)));
      }
    }
  });
}

if (require.main === module) client();
