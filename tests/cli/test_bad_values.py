"""Out-of-range numbers are usage errors (exit 2, HTTP 400), never errno or
OverflowError text; ``kode metrics`` counts what a JSON store holds
(issue 11, item 12)."""

from __future__ import annotations

import json

import pytest
from clidata import fill, kode
from test_serve import get, serving

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "args",
    [
        ("sessions", "--after", HUGE),
        ("sessions", "--before", HUGE + "9"),
        ("messages", "--after", "99999999999d"),
        ("tool-calls", "--before", "9999999999999999999999999w"),
        ("sessions", "--offset", HUGE + "000"),
        ("prune", "--older-than", "99999999d"),
        ("prune", "--older-than", HUGE + "d"),
        ("prune", "--older-than", "999999999w", "--dry-run"),
    ],
)
def test_huge_numbers_are_usage_errors(sqlite_spec: str, args: tuple[str, ...]) -> None:
    result = kode("--store", sqlite_spec, *args)
    assert result.exit_code == 2, result.stderr
    line = result.stderr.strip()
    assert line.startswith("kode: error:") and len(line.splitlines()) == 1
    for leak in ("Errno", "OverflowError", "Traceback"):
        assert leak not in line


def test_huge_numbers_in_query_parameters_answer_400(sqlite_spec: str) -> None:
    with serving(sqlite_spec) as base:
        for path in (f"/sessions?after={HUGE}", "/messages?before=99999999999d", f"/tool-calls?offset={HUGE}000"):
            status, _, body = get(base + path)
            assert status == 400, (path, body)
            assert "Overflow" not in body["error"] and "Errno" not in body["error"]


def test_metrics_of_a_json_store_count_messages_and_tool_calls(tmp_path_factory: pytest.TempPathFactory) -> None:
    spec = f"json:{tmp_path_factory.mktemp('js') / 'store'}"
    fill(spec, 4)  # agents 0..3: 2+3+4+5 messages, 0+1+2+3 tool calls
    result = kode("--store", spec, "metrics", "--json")
    assert result.exit_code == 0, result.stderr
    storage = json.loads(result.stdout)["storage"]
    assert storage["totalAgents"] == 4
    assert storage["totalMessages"] == 14
    assert storage["totalToolCalls"] == 6
    assert storage["dbSizeBytes"] > 0
    prom = kode("--store", spec, "metrics", "--prometheus")
    assert prom.exit_code == 0 and 'kode_store_messages{backend="json"} 14' in prom.stdout
