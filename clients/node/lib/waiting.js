// What an id key holds while its job waits in the queue's `later` set without a record.
//
// The value is the job's state (`scheduled`: its first run waits; `failed`: a retry waits),
// one space, then the stream entry the job becomes once due, as one MessagePack array of
// strings: field, value, field, value, and so on. The enqueue and fail scripts write it with
// Redis's `cmsgpack.pack`, so only arrays and strings (or byte strings) are read here;
// anything else is not a waiting job's value, and the lookup goes on as for an unknown id
// key rather than reading a wrong job.

/**
 * The states a job waits in without a record, as its id key spells them. `grouped`
 * (protocol 2.17): the job waits its group's turn, in the group's line rather than `later`;
 * it is reported `pending`.
 */
const WAITING_STATES = new Set(["scheduled", "failed", "grouped"]);

/**
 * Length bytes after a string's marker: str 8/16/32, and bin 8/16/32, which a packer may
 * write for a byte string; both carry bytes as they are, which a payload (msgpack) needs.
 */
const LENGTH_BYTES = new Map([
  [0xd9, 1],
  [0xda, 2],
  [0xdb, 4],
  [0xc4, 1],
  [0xc5, 2],
  [0xc6, 4],
]);

/**
 * @typedef {object} Waiting a job waiting in `later`
 * @property {"scheduled" | "failed" | "grouped"} state
 * @property {Map<string, Buffer>} fields the fields of the entry it becomes
 */

/**
 * The waiting job an id key's value holds, or null for a value of another form (an entry
 * id, `done <entry id>`) or a malformed one.
 * @param {Buffer} value
 * @returns {Waiting | null}
 */
export function parseWaiting(value) {
  const space = value.indexOf(0x20);
  if (space < 0) return null;
  const state = value.subarray(0, space).toString("latin1");
  if (!WAITING_STATES.has(state)) return null;
  const items = unpackStrings(value.subarray(space + 1));
  if (items === null || items.length % 2 !== 0) return null;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  /** @type {Map<string, Buffer>} */
  const fields = new Map();
  for (let i = 0; i < items.length; i += 2) {
    let name;
    try {
      name = decoder.decode(items[i]);
    } catch {
      return null;
    }
    fields.set(name, items[i + 1]);
  }
  return { state: /** @type {"scheduled" | "failed" | "grouped"} */ (state), fields };
}

/**
 * One MessagePack array of strings (str or bin), as the bytes of each; null unless `data`
 * is exactly that, with nothing after it.
 * @param {Buffer} data
 * @returns {Buffer[] | null}
 */
export function unpackStrings(data) {
  const header = arrayHeader(data);
  if (header === null) return null;
  let at = header.at;
  /** @type {Buffer[]} */
  const items = [];
  // A count larger than the data could hold stops at the first item missing, before
  // anything of that size is allocated.
  for (let i = 0; i < header.count; i++) {
    const item = stringAt(data, at);
    if (item === null) return null;
    items.push(item.value);
    at = item.next;
  }
  return at === data.length ? items : null;
}

/**
 * The item count of the array `data` starts with, and where its first item is: fixarray
 * holds the count in its marker, array16 and array32 in the next 2 or 4 bytes.
 * @param {Buffer} data
 * @returns {{ count: number, at: number } | null}
 */
function arrayHeader(data) {
  if (data.length === 0) return null;
  const marker = data[0];
  if (marker >= 0x90 && marker <= 0x9f) return { count: marker - 0x90, at: 1 };
  if (marker === 0xdc && data.length >= 3) return { count: data.readUInt16BE(1), at: 3 };
  if (marker === 0xdd && data.length >= 5) return { count: data.readUInt32BE(1), at: 5 };
  return null;
}

/**
 * The string at offset `at` and the offset past it; null when there is no whole string
 * there.
 * @param {Buffer} data
 * @param {number} at
 * @returns {{ value: Buffer, next: number } | null}
 */
function stringAt(data, at) {
  if (at >= data.length) return null;
  const marker = data[at];
  let length;
  let start;
  if (marker >= 0xa0 && marker <= 0xbf) {
    length = marker - 0xa0;
    start = at + 1;
  } else {
    const width = LENGTH_BYTES.get(marker);
    if (width === undefined || data.length < at + 1 + width) return null;
    length = data.readUIntBE(at + 1, width);
    start = at + 1 + width;
  }
  const end = start + length;
  if (end > data.length) return null;
  return { value: data.subarray(start, end), next: end };
}
