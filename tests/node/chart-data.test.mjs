// hub/console/static/chart-data.js without a browser: the seam between a history read and the live
// deliveries, the bound of 50,000 points a series, timestamp order. Run by tests/unit/test_console_chart_data.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ChartData, MAX_MARKS, MAX_POINTS, parameterRows, seamOverlap } from "../../hub/console/static/chart-data.js";

const row = (ts, v) => ({ ts, numeric: { Speed: v }, strings: {} });
const rows = (from, to) => Array.from({ length: to - from }, (_, i) => row(from + i, (from + i) * 1.5));

test("the overlap is the history's suffix that is the live buffer's prefix", () => {
  const history = rows(0, 100); // read up to position 100
  const live = rows(80, 130); // subscribed at 80
  assert.equal(seamOverlap(history, live), 20);
  assert.deepEqual([...history, ...live.slice(20)].map((r) => r.ts), rows(0, 130).map((r) => r.ts));
});

test("no overlap when the read ended before the first delivery, or either side is empty", () => {
  assert.equal(seamOverlap(rows(0, 100), rows(100, 110)), 0);
  assert.equal(seamOverlap([], rows(0, 10)), 0);
  assert.equal(seamOverlap(rows(0, 10), []), 0);
});

test("the whole buffer can be history, and a longer buffer than history", () => {
  assert.equal(seamOverlap(rows(0, 100), rows(50, 100)), 50);
  assert.equal(seamOverlap(rows(95, 100), rows(90, 200)), 0); // history does not reach back to S: nothing dropped
  assert.equal(seamOverlap(rows(0, 5), rows(0, 50)), 5);
});

test("a row equal in timestamp but not in value is not the same row", () => {
  const history = [row(1, 1), row(2, 2)];
  assert.equal(seamOverlap(history, [row(2, 99), row(3, 3)]), 0);
});

test("parameter rows: nulls left out, a row with nothing left out", () => {
  const got = parameterRows({ timestamps: [1, 2, 3], numericValues: { A: [1, null, 3] }, stringValues: { S: [null, null, "x"] } });
  assert.deepEqual(got, [
    { ts: 1, numeric: { A: 1 }, strings: {} },
    { ts: 3, numeric: { A: 3 }, strings: { S: "x" } },
  ]);
});

test("at most 50,000 points a series after each batch: the oldest go, the latest value stays", () => {
  const data = new ChartData();
  for (let batch = 0; batch < 6; batch++) data.addRows(rows(batch * 10000, (batch + 1) * 10000));
  assert.equal(data.x.length, MAX_POINTS);
  assert.equal(data.dropped, 10000);
  assert.equal(data.ts[0], 10000);
  assert.equal(data.series.get("Speed").length, MAX_POINTS);
  assert.equal(data.latest.get("Speed"), 59999 * 1.5);
  data.addEvents(Array.from({ length: MAX_MARKS + 7 }, (_, i) => ({ ts: i, id: "e", value: String(i) })));
  assert.equal(data.marks.length, MAX_MARKS);
  assert.equal(data.marks[0].value, "7");
});

test("rows out of timestamp order are placed in order; a new parameter gets nulls before it", () => {
  const data = new ChartData();
  data.addRows([row(10, 1), row(30, 3), row(20, 2)]);
  data.addRow({ ts: 40, numeric: { Rpm: 7 }, strings: { Gear: "2" } });
  assert.deepEqual(data.ts, [10, 20, 30, 40]);
  assert.deepEqual(data.series.get("Speed"), [1, 2, 3, null]);
  assert.deepEqual(data.series.get("Rpm"), [null, null, null, 7]);
  assert.deepEqual(data.marks.map((m) => [m.ts, m.label, m.value]), [[40, "Gear", "2"]]);
  assert.equal(data.maxTs, 40);
});
