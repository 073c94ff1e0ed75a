"""``check_metric`` on synthetic series: each rule fires on its anomaly and stays quiet on noise."""

from __future__ import annotations

import math
import random

import pytest

from apps.governance.detectors import check_metric
from apps.governance.detectors.metrics import MIN_HISTORY


def noisy(n: int, mean: float = 10.0, sd: float = 1.0, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


def detectors(findings) -> set[str]:
    return {f.detector for f in findings}


def test_nothing_is_said_before_the_minimum_history():
    assert check_metric("fgw", "duration", 1e9, noisy(MIN_HISTORY - 1)) == []
    assert check_metric("fgw", "duration", 1e9, noisy(MIN_HISTORY))


def test_an_ordinary_value_raises_nothing():
    history = noisy(200)
    assert check_metric("fgw", "duration", 10.5, history) == []
    assert check_metric("fgw", "duration", 9.2, history) == []


def test_zscore_and_iqr_catch_an_outlier():
    findings = check_metric("rd_sweep", "distortion", 16.0, noisy(200))
    assert {"metric:zscore", "metric:iqr"} <= detectors(findings)
    z = next(f for f in findings if f.detector == "metric:zscore")
    assert (
        z.flag == "anomaly" and z.severity >= 5 and "above" in z.reason and "rd_sweep distortion" in z.reason
    )


def test_a_low_outlier_is_reported_below():
    z = next(
        f for f in check_metric("llm", "output_length", 2.0, noisy(200)) if f.detector == "metric:zscore"
    )
    assert "below" in z.reason


def test_iqr_alone_on_a_moderate_outlier():
    history = [10.0] * 30 + [11.0] * 30 + [12.0] * 30
    findings = check_metric("python", "duration", 15.5, history)
    assert "metric:iqr" in detectors(findings)


def test_a_spike_from_a_smooth_series():
    history = [100.0 + 0.5 * i for i in range(200)]  # a steady ramp: large spread, tiny steps
    findings = check_metric("fgw", "duration", 225.0, history)
    assert detectors(findings) == {"metric:spike"}  # within the ramp's overall spread and trend
    assert check_metric("fgw", "duration", 200.0, history) == []


def test_a_trend_change_in_the_recent_window():
    history = noisy(60, mean=10.0, sd=0.3) + noisy(14, mean=14.0, sd=0.3, seed=1)
    findings = check_metric("inference", "error_rate", 14.1, history)
    assert "metric:trend" in detectors(findings)
    assert check_metric("inference", "error_rate", 10.1, noisy(75, mean=10.0, sd=0.3)) == []


def test_a_flat_history_still_sees_a_change():
    findings = check_metric("fgw", "duration", 2.0, [1.0] * 20)
    assert "metric:zscore" in detectors(findings)
    assert check_metric("fgw", "duration", 1.0, [1.0] * 20) == []


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_values(value):
    assert detectors(check_metric("fgw", "duration", value, noisy(20))) == {"metric:non-finite"}
    # non-finite history entries are skipped, not propagated
    assert check_metric("fgw", "duration", 10.0, [*noisy(20), math.nan, math.inf]) == []


def test_a_small_wobble_on_a_steady_history_is_not_an_anomaly():
    # 2 s runs that take 2.010-2.016 s: a 2.035 s run is many standard deviations out, but 1%
    steady = noisy(60, mean=2.013, sd=0.0015, seed=3)
    assert check_metric("sleep", "duration_seconds", 2.035, steady) == []
    # nor when one odd run (a first run of 0.5 s) pulls the mean away from the rest
    assert check_metric("sleep", "duration_seconds", 2.035, [0.5, *steady]) == []
    far = check_metric("sleep", "duration_seconds", 2.6, steady)
    assert {"metric:zscore", "metric:iqr"} <= detectors(far)
