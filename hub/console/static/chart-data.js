// What the live chart holds, without DOM or network (tests/node/chart-data.test.mjs runs it in Node):
// parameter rows and marks in timestamp order, capped, and the seam between a history read and the
// live deliveries that overlap it.

// Per series: after each batch (a live delivery, a page of history) the oldest rows beyond it are
// dropped, so a full chart holds exactly 50,000 points a series (a batch at most more, while added).
export const MAX_POINTS = 50_000;
export const MAX_MARKS = 5_000; // events and string values, the same way

// A parameter delivery or an HTTP page ({timestamps, numericValues, stringValues}) -> rows
// [{ts, numeric: {id: number}, strings: {id: string}}]; a row with nothing in it is left out.
export function parameterRows(data) {
  const rows = [];
  const numeric = Object.entries(data.numericValues || {});
  const strings = Object.entries(data.stringValues || {});
  (data.timestamps || []).forEach((ts, i) => {
    const row = { ts, numeric: {}, strings: {} };
    let any = false;
    for (const [id, values] of numeric) if (values[i] !== null && values[i] !== undefined) ((row.numeric[id] = values[i]), (any = true));
    for (const [id, values] of strings) if (values[i] !== null && values[i] !== undefined) ((row.strings[id] = values[i]), (any = true));
    if (any) rows.push(row);
  });
  return rows;
}

// A row's identity at the seam: its timestamp and every value, in a fixed order.
export function rowKey(row) {
  if (row.id !== undefined) return `${row.ts}|e|${row.id}|${row.value}`; // an event
  const parts = [String(row.ts)];
  for (const id of Object.keys(row.numeric).sort()) parts.push(`n${id}=${row.numeric[id]}`);
  for (const id of Object.keys(row.strings).sort()) parts.push(`s${id}=${row.strings[id]}`);
  return parts.join("|");
}

// The history read (in arrival order, up to some position P) and the live deliveries buffered from
// a subscription made before the read began (in arrival order, from a position S <= P) overlap in
// exactly the rows between S and P: a suffix of one, a prefix of the other. Returns how many of
// `live` the history already holds. Both must be filtered the same way (the read's `from`).
export function seamOverlap(history, live) {
  if (!live.length || !history.length) return 0;
  const first = rowKey(live[0]);
  const historyKeys = history.slice(Math.max(0, history.length - live.length)).map(rowKey);
  for (let i = 0; i < historyKeys.length; i++) {
    if (historyKeys[i] !== first) continue;
    const k = historyKeys.length - i;
    let same = true;
    for (let j = 1; j < k && same; j++) same = historyKeys[i + j] === rowKey(live[j]);
    if (same) return k;
  }
  return 0;
}

export function insertAt(sorted, value, of = (item) => item) {
  // index after every element <= value (binary search; appending is the common case)
  if (!sorted.length || of(sorted[sorted.length - 1]) <= value) return sorted.length;
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (of(sorted[mid]) <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class ChartData {
  constructor() {
    this.clear();
  }

  clear() {
    this.ts = []; // nanoseconds as sent (a double: exact for timestamps a double holds)
    this.x = []; // seconds, for the axis
    this.series = new Map(); // numeric parameter id -> values aligned with x (null where a row lacks it)
    this.marks = []; // {x, ts, kind: "event"|"string", label, value}, by x
    this.latest = new Map(); // parameter id -> the value received last
    this.dropped = 0; // rows dropped at the bound
    this.droppedMarks = 0;
    this.maxTs = null;
  }

  // Adds a batch, then drops the oldest beyond the bounds.
  addRows(rows) {
    for (const row of rows) this.addRow(row);
    this.trim();
  }

  addEvents(events) {
    for (const event of events) this.addEvent(event);
    this.trim();
  }

  // One row, without the bound: callers add batches through addRows.
  addRow(row) {
    const ids = Object.keys(row.numeric);
    if (ids.length) {
      for (const id of ids) {
        if (!this.series.has(id)) this.series.set(id, new Array(this.x.length).fill(null));
        this.latest.set(id, row.numeric[id]);
      }
      const x = row.ts / 1e9;
      const at = insertAt(this.x, x);
      if (at === this.x.length) {
        this.x.push(x);
        this.ts.push(row.ts);
        for (const [id, values] of this.series) values.push(id in row.numeric ? row.numeric[id] : null);
      } else {
        this.x.splice(at, 0, x);
        this.ts.splice(at, 0, row.ts);
        for (const [id, values] of this.series) values.splice(at, 0, id in row.numeric ? row.numeric[id] : null);
      }
    }
    for (const [id, value] of Object.entries(row.strings)) {
      this.latest.set(id, value);
      this.addMark({ x: row.ts / 1e9, ts: row.ts, kind: "string", label: id, value });
    }
    if (this.maxTs === null || row.ts > this.maxTs) this.maxTs = row.ts;
  }

  addEvent(event) {
    this.addMark({ x: event.ts / 1e9, ts: event.ts, kind: "event", label: event.id, value: event.value });
    if (this.maxTs === null || event.ts > this.maxTs) this.maxTs = event.ts;
  }

  addMark(mark) {
    const marks = this.marks;
    if (!marks.length || marks[marks.length - 1].x <= mark.x) marks.push(mark);
    else marks.splice(insertAt(marks, mark.x, (m) => m.x), 0, mark);
  }

  trim() {
    const excess = this.x.length - MAX_POINTS;
    if (excess > 0) {
      this.x.splice(0, excess);
      this.ts.splice(0, excess);
      for (const values of this.series.values()) values.splice(0, excess);
      this.dropped += excess;
    }
    const extraMarks = this.marks.length - MAX_MARKS;
    if (extraMarks > 0) {
      this.marks.splice(0, extraMarks);
      this.droppedMarks += extraMarks;
    }
  }

  // [x, ...values of `ids`] as uPlot takes it
  aligned(ids) {
    return [this.x, ...ids.map((id) => this.series.get(id) || new Array(this.x.length).fill(null))];
  }
}
