// RESP on the client-to-server stream: an incremental parser of requests (multibulk and inline commands) and an
// encoder for the commands the proxy sends in place of a client's.

export interface ParsedCommand {
  /** The exact bytes the client sent for this command. */
  raw: Buffer;
  /** The command's arguments (views into `raw`'s buffer, no copies). */
  args: Buffer[];
}

type ParseStep = { end: number; args: Buffer[] } | { need: number } | { error: string };

const CR = 13;
const LF = 10;
const MAX_HEADER_LINE = 64 * 1024;

function readLine(buf: Buffer, pos: number): { line: string; next: number } | undefined {
  const cr = buf.indexOf(CR, pos);
  if (cr === -1 || cr + 1 >= buf.length) return undefined;
  return { line: buf.toString('latin1', pos, cr), next: cr + 2 };
}

/** Parses one command at `pos`, or says how many bytes (counted from `pos`) are needed at least to make progress. */
function parseOne(buf: Buffer, pos: number): ParseStep {
  if (buf[pos] !== 0x2a /* '*' */) {
    // Inline command (redis-cli's and telnet's form): one line, arguments separated by spaces.
    const lf = buf.indexOf(LF, pos);
    if (lf === -1) {
      if (buf.length - pos > MAX_HEADER_LINE) return { error: 'inline command too long' };
      return { need: buf.length - pos + 1 };
    }
    const line = buf.toString('latin1', pos, lf).replace(/\r$/, '');
    const args = line
      .split(/[ \t]+/)
      .filter(Boolean)
      .map((arg) => Buffer.from(arg, 'latin1'));
    return { end: lf + 1, args };
  }
  const header = readLine(buf, pos);
  if (!header) {
    if (buf.length - pos > MAX_HEADER_LINE) return { error: 'multibulk header too long' };
    return { need: buf.length - pos + 1 };
  }
  const count = Number(header.line.slice(1));
  if (!Number.isInteger(count)) return { error: 'invalid multibulk length' };
  let cursor = header.next;
  const args: Buffer[] = [];
  for (let i = 0; i < count; i += 1) {
    if (cursor >= buf.length) return { need: cursor - pos + 1 };
    if (buf[cursor] !== 0x24 /* '$' */) return { error: 'expected a bulk string' };
    const bulkHeader = readLine(buf, cursor);
    if (!bulkHeader) {
      if (buf.length - cursor > MAX_HEADER_LINE) return { error: 'bulk header too long' };
      return { need: buf.length - pos + 1 };
    }
    const length = Number(bulkHeader.line.slice(1));
    if (!Number.isInteger(length) || length < 0) return { error: 'invalid bulk length' };
    const end = bulkHeader.next + length;
    if (end + 2 > buf.length) return { need: end + 2 - pos };
    if (buf[end] !== CR || buf[end + 1] !== LF) return { error: 'bulk string not followed by CRLF' };
    args.push(buf.subarray(bulkHeader.next, end));
    cursor = end + 2;
  }
  return { end: cursor, args };
}

/**
 * Incremental parser of a client's request stream. Chunks are only concatenated once enough bytes have arrived to make
 * progress, so a large bulk string arriving in many chunks is copied once, not once per chunk.
 */
export class RequestParser {
  #chunks: Buffer[] = [];
  #length = 0;
  #need = 1;

  /** Returns complete commands, or the error that makes the rest of the stream unparseable. */
  push(data: Buffer): { commands: ParsedCommand[]; error?: string; rest?: Buffer } {
    this.#chunks.push(data);
    this.#length += data.length;
    if (this.#length < this.#need) return { commands: [] };
    const buf = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks, this.#length);
    this.#chunks = [];
    this.#length = 0;
    const commands: ParsedCommand[] = [];
    let pos = 0;
    while (pos < buf.length) {
      const step = parseOne(buf, pos);
      if ('error' in step) return { commands, error: step.error, rest: buf.subarray(pos) };
      if ('need' in step) {
        this.#need = step.need;
        break;
      }
      commands.push({ raw: buf.subarray(pos, step.end), args: step.args });
      pos = step.end;
    }
    if (pos >= buf.length) this.#need = 1;
    else {
      const rest = buf.subarray(pos);
      this.#chunks = [rest];
      this.#length = rest.length;
    }
    return { commands };
  }
}

/** Encodes a command as a RESP multibulk of bulk strings. */
export function encodeCommand(args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const value = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${value.length}\r\n`), value, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** An argument as a lower-case string ('' when absent), for comparing command and option names. */
export const lower = (arg: Buffer | undefined) => (arg === undefined ? '' : arg.toString('latin1').toLowerCase());
