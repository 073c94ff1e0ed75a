"""``check_metric``: is this run's metric out of line with earlier runs of the same kind?

Four tests against the history (oldest first) of one metric of one run kind: z-score (|z| >= 3),
Tukey's IQR fences (1.5 and 3 IQR), a spike (a jump from the last value larger than 3 standard
deviations of the run-to-run changes) and a trend change (the last window's level more than 25% and
3 standard errors away from the window before it). Nothing is said before ``MIN_HISTORY`` values,
nor by the z-score and IQR tests of a value within ``MIN_RELATIVE_DEVIATION`` of the history's
median: on a steady history (2 s runs that take 2.01-2.02 s) a 1% wobble is many standard
deviations and far outside the quartiles, and not worth a review.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from apps.governance.detectors.findings import Finding

MIN_HISTORY = 8
MAX_HISTORY = 1000  # the most recent values that count; older runs say little about this one
Z_THRESHOLD = 3.0
IQR_FENCE = 1.5
IQR_FAR_FENCE = 3.0
SPIKE_SIGMA = 3.0
TREND_MIN_WINDOW = 4
TREND_RELATIVE = 0.25
TREND_STDERR = 3.0
MIN_RELATIVE_DEVIATION = 0.1
_EPS = 1e-12


def _quantile(ordered: Sequence[float], q: float) -> float:
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _scale(values: Sequence[float]) -> float:
    """A floor for spreads, so a perfectly flat history does not make every wobble infinite."""
    return max(abs(statistics.fmean(values)) * 1e-6, _EPS)


def check_metric(kind: str, name: str, value: float, history: Sequence[float]) -> list[Finding]:
    """Anomaly findings for ``value`` of metric ``name`` against earlier runs of ``kind`` (oldest first)."""
    value = float(value)
    label = f"{kind} {name}"
    if not math.isfinite(value):
        return [Finding("anomaly", 6, 0.6, f"{label} is {value}", "metric:non-finite", None)]
    past = [float(v) for v in history if math.isfinite(float(v))][-MAX_HISTORY:]
    if len(past) < MIN_HISTORY:
        return []
    findings: list[Finding] = []
    mean = statistics.fmean(past)
    std = max(statistics.pstdev(past), _scale(past))
    floor = _scale(past)

    median = statistics.median(past)
    material = abs(value - median) > MIN_RELATIVE_DEVIATION * max(abs(median), floor)

    z = (value - mean) / std
    if material and abs(z) >= Z_THRESHOLD:
        severity = min(9, 5 + int((abs(z) - Z_THRESHOLD) / 2))
        side = "above" if z > 0 else "below"
        findings.append(
            Finding(
                "anomaly",
                severity,
                min(1.0, 0.5 + (abs(z) - Z_THRESHOLD) / 10),
                f"{label} = {value:g} is {abs(z):.1f} standard deviations {side} the mean of the last "
                f"{len(past)} runs ({mean:g})",
                "metric:zscore",
                None,
            )
        )

    ordered = sorted(past)
    q1, q3 = _quantile(ordered, 0.25), _quantile(ordered, 0.75)
    iqr = max(q3 - q1, floor)
    for fence, severity in ((IQR_FAR_FENCE, 6), (IQR_FENCE, 4)):
        low, high = q1 - fence * iqr, q3 + fence * iqr
        if material and (value < low or value > high):
            findings.append(
                Finding(
                    "anomaly",
                    severity,
                    severity / 10,
                    f"{label} = {value:g} is outside {fence:g} IQR of the last {len(past)} runs "
                    f"([{low:g}, {high:g}])",
                    "metric:iqr",
                    None,
                )
            )
            break

    steps = [b - a for a, b in zip(past, past[1:], strict=False)]
    step_std = max(statistics.pstdev(steps), floor) if len(steps) >= 2 else floor
    jump = value - past[-1]
    if abs(jump) > SPIKE_SIGMA * step_std and abs(jump) > 0.1 * max(abs(past[-1]), floor):
        ratio = abs(jump) / step_std
        findings.append(
            Finding(
                "anomaly",
                min(8, 5 + int((ratio - SPIKE_SIGMA) / 3)),
                min(1.0, 0.4 + ratio / 20),
                f"{label} jumped from {past[-1]:g} to {value:g}, {ratio:.1f} times the usual change "
                "from one run to the next",
                "metric:spike",
                None,
            )
        )

    window = max(TREND_MIN_WINDOW, len(past) // 4)
    if len(past) + 1 >= 2 * window:
        series = [*past, value]
        recent, before = series[-window:], series[-2 * window : -window]
        m_recent, m_before = statistics.fmean(recent), statistics.fmean(before)
        stderr = math.sqrt((statistics.pvariance(recent) + statistics.pvariance(before)) / window)
        shift = m_recent - m_before
        relative = abs(shift) / max(abs(m_before), floor)
        if relative > TREND_RELATIVE and abs(shift) > TREND_STDERR * max(stderr, floor):
            findings.append(
                Finding(
                    "anomaly",
                    5 if relative < 1 else 6,
                    min(1.0, 0.4 + relative / 4),
                    f"{label}: the last {window} runs average {m_recent:g}, {relative:.0%} "
                    f"{'above' if shift > 0 else 'below'} the {window} before them ({m_before:g})",
                    "metric:trend",
                    None,
                )
            )
    return findings
