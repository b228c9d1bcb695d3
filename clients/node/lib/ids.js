// A job's full id: the one string that names it in a namespace, whatever queue or partition holds it.
//
// A job with an id of its own is named by that id. A job without one (a fast-path job) is
// named by its stream entry id, which is unique within its stream only: two queues, or two
// partitions of one, hand out the same entry ids. Its full id therefore carries the queue:
// `<queue>:<entry id>`. An own id can take neither form (see `checkJobId`), so a full id
// says by its form where the job is.

const ENTRY_ID_FORM = /^[0-9]+-[0-9]+$/;

/**
 * Whether `value` has the form of a stream entry id, `<digits>-<digits>`.
 * @param {string} value
 * @returns {boolean}
 */
export function isEntryIdForm(value) {
  return ENTRY_ID_FORM.test(value);
}

/**
 * Whether `value` has the form of an id that names a job without an id of its own: an
 * entry id, or anything ending in `:<entry id>` (the full id of one). No producer may give
 * a job such an id.
 * @param {string} value
 * @returns {boolean}
 */
export function namesEntry(value) {
  const colon = value.lastIndexOf(":");
  return isEntryIdForm(value) || (colon >= 0 && isEntryIdForm(value.slice(colon + 1)));
}

/**
 * The full id of job `id` of `queue`: `<queue>:<id>` when `id` is an entry id (a job
 * without an id of its own, such as the one `enqueue` returns on the fast path), else `id`
 * itself. `queue` is the queue (or partition) the job is in.
 * @param {string} queue
 * @param {string} id
 * @returns {string}
 */
export function fullId(queue, id) {
  return isEntryIdForm(id) ? `${queue}:${id}` : id;
}

/**
 * Reads a job id as someone gave it: `{ queue, id: entryId }` for a full id
 * (`<queue>:<entry id>`, split at the last `:`, the queue not empty), else
 * `{ queue: null, id: value }`: an own id or a bare entry id, which say nothing of their
 * queue.
 * @param {string} value
 * @returns {{ queue: string | null, id: string }}
 */
export function parseFullId(value) {
  const colon = value.lastIndexOf(":");
  if (colon > 0 && isEntryIdForm(value.slice(colon + 1))) {
    return { queue: value.slice(0, colon), id: value.slice(colon + 1) };
  }
  return { queue: null, id: value };
}
