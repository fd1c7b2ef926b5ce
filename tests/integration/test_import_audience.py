"""Guarantee checked (custom uploads): `import-audience` publishes one membership
event per good CSV row and reports bad rows by line; the worker then makes the upload audience's
list equal to the file's people, and an `--exit` import of the same file empties it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.integration.harness import (
    WorkerProcess,
    new_input_topic,
    read_topic,
    wait_for_lists,
    write_config,
)
from worker.commands.import_audience import main
from worker.core.uploads import derived_profile_id
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [
    {"id": "webinar", "name": "Webinar", "origin": "upload", "list": {"name": "Webinar"}},
    {"id": "fr", "name": "France", "rule": 'country == "FR"', "list": {"name": "France"}},
]
NO_SANDBOX = "http://127.0.0.1:9"  # import-audience never talks to Marketo
MIXED_CSV = (
    "email,profile_id,firstName\n"
    "ann@example.com,p-1,Ann\n"  # line 2
    "not-an-email,p-2,Bob\n"  # line 3: invalid email
    "Cleo@Example.com,,Cleo\n"  # line 4: id derived from the email
    ",p-4,Dan\n"  # line 5: missing email
    "eve@example.com,p-5\n"  # line 6: a column short
    "\n"  # line 7: blank, skipped
    f"fay@example.com,{'x' * 300},Fay\n"  # line 8: profile_id too long
    "gus@example.com,p-7,Gus\n"  # line 9
)


def high_watermark(bootstrap: str, topic: str) -> int:
    """How many records the (single-partition) topic holds."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=15)
    finally:
        consumer.close()
    return int(high)


def test_good_rows_are_published_and_bad_rows_reported_by_line(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1, every bad line named with its reason, exactly one realized event per good row."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    config = write_config(tmp_path / "c.yaml", kafka_bootstrap, NO_SANDBOX, topic, AUDIENCES)
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(MIXED_CSV)

    assert main([str(config), "webinar", str(csv_path)]) == 1

    out, err = capsys.readouterr()
    assert "line 3: invalid email" in err
    assert "line 5: missing email" in err
    assert "line 6: expected 3 columns, found 2" in err
    assert "line 8: profile_id is longer than 256 characters" in err
    assert not {"line 2", "line 4", "line 7", "line 9"} & {line[:6] for line in err.splitlines()}
    assert "imported 3 rows, 4 bad rows" in out
    assert high_watermark(kafka_bootstrap, topic) == 3
    values = [orjson.loads(r.value()) for r in read_topic(kafka_bootstrap, topic, 3)]
    assert [v["profile_id"] for v in values] == [
        "p-1",
        derived_profile_id("cleo@example.com"),
        "p-7",
    ]
    assert all(v["audiences"] == {"webinar": "realized"} for v in values)
    assert [v["ts"] for v in values] == sorted(v["ts"] for v in values)  # never back in time


def test_exit_import_publishes_exited_statuses(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --exit every published event says the person exited; a clean file exits 0."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    config = write_config(tmp_path / "c.yaml", kafka_bootstrap, NO_SANDBOX, topic, AUDIENCES)
    csv_path = tmp_path / "people.csv"
    csv_path.write_text("email\nann@example.com\nbob@example.com\n")

    assert main([str(config), "webinar", str(csv_path), "--exit"]) == 0

    assert "imported 2 rows, 0 bad rows" in capsys.readouterr().out
    values = [orjson.loads(r.value()) for r in read_topic(kafka_bootstrap, topic, 2)]
    assert [v["audiences"] for v in values] == [{"webinar": "exited"}] * 2


@pytest.mark.parametrize(
    ("audience", "message"),
    [
        ("fr", "has origin 'rule'"),
        ("nope", "'nope' is not in the config (upload audiences: webinar)"),
    ],
)
def test_audience_must_be_an_upload_audience_of_the_config(
    audience: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule audience or an unknown id is refused with exit 2 before anything is read."""
    config = write_config(tmp_path / "c.yaml", "127.0.0.1:9", NO_SANDBOX, "t", AUDIENCES)
    csv_path = tmp_path / "people.csv"
    csv_path.write_text("email\nann@example.com\n")
    assert main([str(config), audience, str(csv_path)]) == 2
    assert message in capsys.readouterr().err


def test_unterminated_quote_is_reported_with_the_lines_it_swallowed(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A quote left open is one bad row naming its lines (exit 1), not rows silently merged."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    config = write_config(tmp_path / "c.yaml", kafka_bootstrap, NO_SANDBOX, topic, AUDIENCES)
    csv_path = tmp_path / "people.csv"
    csv_path.write_text('email,firstName\nann@example.com,Ann\nbob@example.com,"Bob\ncy@x.com,Cy\n')

    assert main([str(config), "webinar", str(csv_path)]) == 1

    out, err = capsys.readouterr()
    assert "line 3: unterminated quote" in err
    assert "lines 3-4 not imported" in err
    assert "imported 1 row, 1 bad row\n" in out
    assert high_watermark(kafka_bootstrap, topic) == 1


def test_file_without_email_column_is_refused(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A header without `email` stops the import (exit 2) before anything is published."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    config = write_config(tmp_path / "c.yaml", kafka_bootstrap, NO_SANDBOX, topic, AUDIENCES)
    csv_path = tmp_path / "people.csv"
    csv_path.write_text("mail,firstName\nann@example.com,Ann\n")
    assert main([str(config), "webinar", str(csv_path)]) == 2
    assert "line 1: the header has no email column" in capsys.readouterr().err
    assert high_watermark(kafka_bootstrap, topic) == 0


def test_worker_fills_the_upload_list_then_an_exit_import_empties_it(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The list ends with exactly the CSV's people, and with nobody after `--exit`."""
    topic = new_input_topic(kafka_bootstrap, partitions=2)
    people = [f"person{i}@example.com" for i in range(12)]
    csv_path = tmp_path / "people.csv"
    rows = [f"{email},First{i},Last{i}" for i, email in enumerate(people)]
    csv_path.write_text("\n".join(["email,firstName,lastName", *rows, "broken,x,y"]) + "\n")
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            assert main([str(config), "webinar", str(csv_path)]) == 1  # the broken row
            wait_for_lists(sandbox, {"Webinar": set(people), "France": set()}, 90)
            assert main([str(config), "webinar", str(csv_path), "--exit"]) == 1
            wait_for_lists(sandbox, {"Webinar": set()}, 90)
        finally:
            assert worker.stop() == 0
    assert capsys.readouterr().out.count("imported 12 rows, 1 bad row\n") == 2
