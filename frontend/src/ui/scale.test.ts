import { describe, expect, it } from "vitest";
import {
  formatBucket,
  formatNumber,
  formatPercent,
  labelEvery,
  linePath,
  highOutliers,
  lowOutliers,
  median,
  niceDomain,
  niceStep,
  niceTicks,
  scaleLinear,
} from "./scale";

describe("scaleLinear", () => {
  it("maps the domain onto the range, inverted ranges included (SVG y grows downwards)", () => {
    const y = scaleLinear([0, 1], [200, 0]);
    expect(y(0)).toBe(200);
    expect(y(1)).toBe(0);
    expect(y(0.25)).toBe(150);
  });

  it("maps a zero-width domain to the middle instead of dividing by zero", () => {
    expect(scaleLinear([3, 3], [0, 100])(3)).toBe(50);
  });
});

describe("nice ticks", () => {
  it("steps by 1, 2 or 5 times a power of ten", () => {
    expect(niceStep(0, 1, 5)).toBe(0.2);
    expect(niceStep(0, 100, 5)).toBe(20);
    expect(niceStep(0, 37, 5)).toBe(10);
    expect(niceStep(0, 7, 5)).toBe(1);
    expect(niceStep(0, 9, 5)).toBe(2);
  });

  it("covers the range with clean numbers", () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 37)).toEqual([0, 10, 20, 30]);
    expect(niceTicks(-0.3, 1)).toEqual([-0.2, 0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(5, 5)).toEqual([5]);
  });

  it("has no binary noise", () => {
    expect(niceTicks(0, 0.6, 6)).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
  });

  it("widens a domain to whole steps", () => {
    expect(niceDomain(0, 37)).toEqual([0, 40]);
    expect(niceDomain(0, 0)).toEqual([0, 1]);
    expect(niceDomain(-0.13, 0.92)).toEqual([-0.2, 1]);
  });
});

describe("labelEvery", () => {
  it("labels every category when they fit, else every k-th from the first", () => {
    expect(labelEvery(4, 10)).toEqual([0, 1, 2, 3]);
    expect(labelEvery(25, 6)).toEqual([0, 5, 10, 15, 20]);
    expect(labelEvery(0, 6)).toEqual([]);
  });
});

describe("formatting", () => {
  it("formats UTC buckets by day or hour", () => {
    expect(formatBucket("2025-03-01T09:00:00Z", "hour")).toBe("Mar 1 09:00");
    expect(formatBucket("2025-03-01T00:00:00Z", "day")).toBe("Mar 1");
  });

  it("formats rates and numbers, with a dash for nothing measured", () => {
    expect(formatPercent(0.73333)).toBe("73.3%");
    expect(formatPercent(1)).toBe("100.0%");
    expect(formatPercent(null)).toBe("—");
    expect(formatNumber(0.319727, 3)).toBe("0.32");
    expect(formatNumber(2)).toBe("2");
    expect(formatNumber(undefined)).toBe("—");
  });
});

describe("median and low outliers", () => {
  it("takes the median of odd and even counts", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([])).toBeNull();
  });

  it("flags the labeler far below the others, not the ones near the median", () => {
    const accuracy = [0.81, 0.78, 0.84, 0.42, 0.8];
    expect([...lowOutliers(accuracy, { minGap: 0.1 })]).toEqual([3]);
  });

  it("does not flag anyone in a tight team just under the median", () => {
    expect(lowOutliers([0.8, 0.8, 0.8, 0.79], { minGap: 0.1 }).size).toBe(0);
  });

  it("flags unusually high values on the other side (a suspiciously fast labeler)", () => {
    const perHour = [80, 105, 96, 516];
    expect([...highOutliers(perHour, { minGap: 0.3 * 100.5 })]).toEqual([3]);
    expect(lowOutliers(perHour, { minGap: 0.3 * 100.5 }).size).toBe(0);
  });

  it("ignores nulls and needs three measured values", () => {
    expect(lowOutliers([null, 0.9, 0.1]).size).toBe(0);
    expect([...lowOutliers([null, 0.9, 0.88, 0.91, 0.2], { minGap: 0.1 })]).toEqual([4]);
  });
});

describe("linePath", () => {
  it("breaks at gaps, or bridges them when asked", () => {
    const points: ([number, number] | null)[] = [[0, 0], [10, 5], null, [30, 2]];
    expect(linePath(points)).toBe("M0.0,0.0L10.0,5.0M30.0,2.0");
    expect(linePath(points, true)).toBe("M0.0,0.0L10.0,5.0L30.0,2.0");
  });
});
