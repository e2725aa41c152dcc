import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dstbench import vocab
from dstbench.vocab import format_rule, parse_rule, run_mode, status_of, summary_record


def test_the_vocabulary_imports_nothing_heavy():
    code = "import sys, dstbench.vocab; print(sorted(m for m in sys.modules if m in ('torch', 'pydantic', 'pandas')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(("density", "period", "mode"), [
    (1.0, 800, "dst"), (1.0, 0, "dense"), (0.1, 0, "static"), (0.1, 800, "dst"), (0.999, 1, "dst"),
])
def test_run_mode(density, period, mode):
    assert run_mode(density, period) == mode


def test_status_of_a_summary():
    assert status_of(None) == "pending"
    assert status_of(None, started=True) == "started"
    assert status_of({"status": "done"}) == "done"
    assert status_of({}) == "done"  # summaries written before the status key
    assert status_of({"status": "failed", "reason": "x"}) == "failed"


def test_summary_record_has_every_key_and_only_known_ones():
    record = summary_record("failed", "why", "abc", {"model": "m"}, wall_seconds=1.5)
    assert tuple(record) == vocab.SUMMARY_KEYS
    assert record["wall_seconds"] == 1.5 and record["final_test_acc"] is None
    with pytest.raises(ValueError, match="not summary keys: accuracy"):
        summary_record("done", None, "abc", {}, accuracy=1.0)
    with pytest.raises(ValueError, match="status"):
        summary_record("started", None, "abc", {})


def test_parse_rule():
    assert parse_rule("mest:lam=0.5") == ("mest", {"lam": 0.5})
    assert parse_rule(" mest: ") == ("mest", {})
    assert parse_rule("linear:factor=0.9, every=100") == ("linear", {"factor": 0.9, "every": 100})
    assert parse_rule("x:flag=true,name=abc") == ("x", {"flag": True, "name": "abc"})
    assert parse_rule(("mest", {"lam": 2})) == ("mest", {"lam": 2})
    with pytest.raises(ValueError, match="key=value"):
        parse_rule("mest:lam")
    with pytest.raises(ValueError, match="twice"):
        parse_rule("mest:lam=1,lam=2")


def test_format_rule_sorts_parameters():
    assert format_rule("magnitude", {}) == "magnitude"
    assert format_rule("linear", {"factor": 0.99, "every": 600}) == "linear:every=600,factor=0.99"
    assert format_rule("x", {"flag": False, "lam": 1.0}) == "x:flag=false,lam=1.0"


_names = st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True)
_values = st.one_of(st.integers(-10**6, 10**6), st.booleans(),
                    st.floats(allow_nan=False, allow_infinity=False, width=64))


@given(_names, st.dictionaries(_names, _values, max_size=4))
def test_format_then_parse_gives_the_rule_back(name, params):
    parsed_name, parsed = parse_rule(format_rule(name, params))
    assert parsed_name == name
    assert parsed == params
    assert all(type(parsed[k]) is type(params[k]) for k in params)


def test_report_kinds_are_the_report_sections():
    from dstbench.report.sections import KINDS

    assert set(KINDS) == set(vocab.REPORT_KINDS)


def test_metrics_row_has_exactly_the_schema():
    values = dict.fromkeys(reversed(vocab.METRICS_KEYS), 0.0)
    assert tuple(vocab.metrics_row(**values)) == vocab.METRICS_KEYS
    with pytest.raises(ValueError, match="epoch"):
        vocab.metrics_row(epoch=1)


def test_the_run_format_lists_every_execution_field():
    """docs/run-format.md says which fields leave the run id alone; a new execution field joins that list."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "run-format.md").read_text()
    assert [name for name in sorted(vocab.EXECUTION_FIELDS) if f"`{name}`" not in text] == []
