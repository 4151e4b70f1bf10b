"""bench/page_cost.py's report: every goal gets a verdict from the run's own figures, and bad
arguments are refused (the benchmark itself runs in `make bench`, not here)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import page_cost  # noqa: E402
from bench_report import Result  # noqa: E402


def _wrk(rps: float, p50: float) -> Result:
    return Result(key="k", name="k", requests=int(rps * 10), seconds=10.0, errors=0,
                  p50_ms=p50, p95_ms=p50 * 2, p99_ms=p50 * 3)


def measured(client_on: float, statements_on: int, spin_added: float, current: float) -> dict[str, Any]:
    def page(on: float, off: float) -> dict[str, Any]:
        return {"on_rps": on, "off_rps": off, "ratio": round(on / off, 3), "on_p50_ms": 1.0,
                "off_p50_ms": 1.0, "round_ratios": [round(on / off, 3)]}
    storm = {"agents": 200, "logged_in": 200, "seconds": 2.0, "logins_per_s": current,
             "p50_ms": 900.0, "p95_ms": 1800.0}
    return {
        "gunicorn": {"client_page": page(client_on, 100.0), "dashboard": page(95.0, 100.0),
                     "terminal_command": page(300.0, 700.0)},
        "in_process": {"client_id": 7, "action_off_status": 404, "statements_extra": statements_on - 10,
                       "statements": {"client_page": {"on": statements_on, "off": 10},
                                      "dashboard": {"on": 4, "off": 3}},
                       "p50_ms": {"terminal_command": {"on": 2.5, "off": 1.0}}},
        "spinner": {"budget_ms": 50, "deadline_ms": 1000, "page_p50_ms": 10.0,
                    "page_with_spinner_p50_ms": 10.0 + spin_added, "added_ms": spin_added,
                    "deferred_fetch_ms": 400.0, "deferred_status": 503},
        "logins": {"current": {"logins_per_s": current, "p95_ms": 1800.0, "runs": [storm]},
                   "legacy": {"logins_per_s": 10.0, "p95_ms": 9000.0, "runs": [storm]},
                   "current_parameters": "argon2id m=19 MiB, t=2, p=1",
                   "legacy_parameters": "argon2id m=64 MiB, t=3, p=4"},
    }


def args() -> argparse.Namespace:
    return page_cost.parse_args([])


def goals(text: str) -> list[str]:
    return [line for line in text.split("### Goals", 1)[1].splitlines() if line.startswith("- ")]


def test_each_goal_is_judged_from_the_figures() -> None:
    good = page_cost.summary(measured(client_on=95.0, statements_on=12, spin_added=40.0, current=50.0))
    assert good["client_page_ratio"] == 0.95 and good["login_speedup"] == 5.0
    # The headline figures are the run's own, taken from where they were measured.
    assert good["statements_extra"] == 2
    assert good["action_p50_ms"] == good["in_process"]["p50_ms"]["terminal_command"]["on"]
    assert not [g for g in goals(page_cost.block(good, "cmd", "0", args())) if "NOT met" in g]

    bad = page_cost.summary(measured(client_on=60.0, statements_on=15, spin_added=80.0, current=20.0))
    failed = [g for g in goals(page_cost.block(bad, "cmd", "0", args())) if "NOT met" in g]
    assert len(failed) == 4  # ratio, statements, spinner, logins; the action p50 still met
    assert any("0.60x" in g for g in failed) and any("2.0x" in g for g in failed)


@pytest.mark.parametrize("argv", [["--rounds", "0"], ["--storm", "11999"], ["--duration", "-1"]])
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        page_cost.parse_args(argv)
    assert raised.value.code == 2
