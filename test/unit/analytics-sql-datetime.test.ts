// DateTime helpers of the SQL engine: text form, parsing, INTERVAL arithmetic and
// toStartOfInterval's rounding origins, against hand-computed instants.
import { describe, expect, it } from "vitest";
import { addInterval, formatDateTime, parseDateTime, startOfInterval } from "../../analytics/sql/datetime.ts";

const t = (text: string) => parseDateTime(text)!;
const f = formatDateTime;

describe("DateTime text", () => {
  it("formats and parses 'YYYY-MM-DD hh:mm:ss' in UTC", () => {
    expect(f(0)).toBe("1970-01-01 00:00:00");
    expect(f(1714564800)).toBe("2024-05-01 12:00:00");
    expect(t("2024-05-01 12:00:00")).toBe(1714564800);
    expect(t("2024-05-01T12:00:00Z")).toBe(1714564800);
    expect(t("2024-05-01")).toBe(1714521600);
    expect(t("1714564800")).toBe(1714564800);
  });

  it("refuses what is not a date", () => {
    for (const bad of ["", "yesterday", "2024-13-01", "2024-02-30", "2023-02-29 00:00:00", "2024-05-01 24:00:00", "2024/05/01", "2024-05-01 12:00", "2024-05-01 12:00:00+02"]) {
      expect(parseDateTime(bad), bad).toBeNull();
    }
    expect(parseDateTime("2024-02-29 00:00:00")).not.toBeNull();
  });
});

describe("INTERVAL arithmetic", () => {
  it("adds fixed units as seconds", () => {
    expect(f(addInterval(t("2024-05-01 12:00:00"), { amount: 90, unit: "SECOND" }, -1))).toBe("2024-05-01 11:58:30");
    expect(f(addInterval(t("2024-05-01 12:00:00"), { amount: 2, unit: "WEEK" }, 1))).toBe("2024-05-15 12:00:00");
    expect(f(addInterval(t("2024-03-01 00:30:00"), { amount: 1, unit: "DAY" }, -1))).toBe("2024-02-29 00:30:00");
  });

  it("moves months and years on the calendar, clamping the day to the month's end", () => {
    expect(f(addInterval(t("2024-01-31 08:00:00"), { amount: 1, unit: "MONTH" }, 1))).toBe("2024-02-29 08:00:00");
    expect(f(addInterval(t("2023-01-31 08:00:00"), { amount: 1, unit: "MONTH" }, 1))).toBe("2023-02-28 08:00:00");
    expect(f(addInterval(t("2024-02-29 00:00:00"), { amount: 1, unit: "YEAR" }, 1))).toBe("2025-02-28 00:00:00");
    expect(f(addInterval(t("2024-11-30 00:00:00"), { amount: 1, unit: "QUARTER" }, 1))).toBe("2025-02-28 00:00:00");
    expect(f(addInterval(t("2024-01-15 00:00:00"), { amount: 13, unit: "MONTH" }, -1))).toBe("2022-12-15 00:00:00");
  });
});

describe("toStartOfInterval", () => {
  const at = t("2024-05-01 11:58:59"); // 1714564739, a Wednesday
  const start = (amount: number, unit: Parameters<typeof startOfInterval>[1]["unit"]) => f(startOfInterval(at, { amount, unit }));

  it("counts seconds and minutes from the epoch", () => {
    expect(start(15, "SECOND")).toBe("2024-05-01 11:58:45");
    expect(start(1, "MINUTE")).toBe("2024-05-01 11:58:00");
    expect(start(5, "MINUTE")).toBe("2024-05-01 11:55:00");
    // 7-minute buckets from the epoch: 12:00:00 is 1714564800 = 4082297 × 420 + 60, so the
    // boundaries fall at 11:59:00, 11:52:00, …; 11:58:59 is in the one from 11:52:00.
    expect(start(7, "MINUTE")).toBe("2024-05-01 11:52:00");
  });

  it("counts hours from midnight and days from the epoch", () => {
    expect(start(1, "HOUR")).toBe("2024-05-01 11:00:00");
    expect(start(5, "HOUR")).toBe("2024-05-01 10:00:00"); // 00, 05, 10, 15, 20
    expect(start(1, "DAY")).toBe("2024-05-01 00:00:00");
    // 2024-05-01 is day 19844 since the epoch (even), 2024-05-02 is day 19845.
    expect(start(2, "DAY")).toBe("2024-05-01 00:00:00");
    expect(f(startOfInterval(t("2024-05-02 03:00:00"), { amount: 2, unit: "DAY" }))).toBe("2024-05-01 00:00:00");
  });

  it("starts weeks on Monday and months, quarters and years on the calendar", () => {
    expect(start(1, "WEEK")).toBe("2024-04-29 00:00:00");
    expect(start(1, "MONTH")).toBe("2024-05-01 00:00:00");
    expect(f(startOfInterval(t("2024-06-30 23:59:59"), { amount: 2, unit: "MONTH" }))).toBe("2024-05-01 00:00:00");
    expect(start(1, "QUARTER")).toBe("2024-04-01 00:00:00");
    expect(start(1, "YEAR")).toBe("2024-01-01 00:00:00");
    expect(start(10, "YEAR")).toBe("2020-01-01 00:00:00");
  });
});
