"""metrics.prom for cron: written by every build, failed ones too, read back with
prometheus_client's own parser; and Luigi's failure mail, through a local SMTP server."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
from aiosmtpd.controller import Controller
from prometheus_client.parser import text_string_to_metric_families

from msd_tasks.formats.metrics import BuildMetrics, TaskMetrics, render, write_metrics
from tests.luigid import HOST, free_port

RUN_COUNT = 2


def samples(path) -> dict[tuple[str, tuple], float]:
    """Every sample of the file, by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(path.read_text())
        for sample in family.samples
    }


def value(found: dict, name: str, **labels) -> float:
    return found[(f"msd_build_{name}", tuple(sorted(labels.items())))]


@pytest.mark.unit
def test_each_outcome_keeps_the_other_outcomes_time_and_labels_are_escaped(tmp_path):
    path = tmp_path / "metrics.prom"
    odd = 'a "quoted" warning\nover two lines \\ with a backslash'
    write_metrics(
        path,
        BuildMetrics(
            succeeded=True,
            finished_at=100.0,
            wall_seconds=5.0,
            warnings=(odd,),
            funnel={"users": 7},
            tasks=(TaskMetrics("T(a=1)", "T", 1.5, 2048),),
        ),
    )
    write_metrics(
        path,
        BuildMetrics(
            succeeded=False,
            finished_at=200.0,
            wall_seconds=None,
            failure="ImportTriplets(kind=train): InputError: line 3",
        ),
    )
    found = samples(path)
    assert value(found, "last_success_timestamp_seconds") == 100.0
    assert value(found, "last_failure_timestamp_seconds") == 200.0
    assert value(found, "succeeded") == 0.0
    assert value(found, "failure_info", reason="ImportTriplets(kind=train): InputError: line 3")
    assert ("msd_build_wall_seconds", ()) not in found  # unknown, so not claimed

    first = render(
        BuildMetrics(True, 100.0, 5.0, warnings=(odd,)),
        {"last_success_timestamp_seconds": 100.0, "last_failure_timestamp_seconds": 0.0},
    )
    parsed = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(first)
        for s in family.samples
    }
    assert parsed[("msd_build_warning_info", (("warning", odd),))] == 1.0


@pytest.mark.process
def test_a_build_and_a_failed_build_write_metrics_and_the_failure_is_mailed(
    builds, raw_files, tmp_path
):
    raw_dir = tmp_path / "raw"
    shutil.copytree(raw_files("sample", scale=0.001, seed=8), raw_dir)
    mails = []
    arrived = threading.Event()

    class Inbox:
        async def handle_DATA(self, server, session, envelope):
            mails.append(envelope)
            arrived.set()
            return "250 OK"

    port = free_port()
    smtp = Controller(Inbox(), hostname=HOST, port=port)
    smtp.start()
    try:
        config = (
            f"\n[email]\nmethod = smtp\nreceiver = data-team@example.org\n"
            f"sender = msd-tasks@example.org\n\n[smtp]\nhost = {HOST}\nport = {port}\n"
            "no_tls = true\n"
        )
        build = builds(
            raw_dir=raw_dir,
            checkpoint_dir=tmp_path / "ck",
            output_dir=tmp_path / "out",
            workers=2,
            n_shards=2,
            config=config,
        )
        ok = build.run("-ok")
        assert ok.returncode == 0, ok.tail()
        metrics = tmp_path / "out" / "metrics.prom"
        found = samples(metrics)
        manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
        succeeded_at = value(found, "last_success_timestamp_seconds")
        assert succeeded_at > 0 and value(found, "last_failure_timestamp_seconds") == 0
        assert value(found, "succeeded") == 1
        assert 0 < value(found, "wall_seconds") < ok.seconds
        assert value(found, "funnel_count", step="users") == manifest["counts"]["users"]
        assert value(found, "skipped_lines", file="train") == 0
        walls = {
            labels: v
            for (name, labels), v in found.items()
            if name == "msd_build_task_wall_seconds"
        }
        families = {dict(labels)["family"] for labels in walls}
        assert {"ImportTriplets", "JoinPlays", "PerUserMusic", "UserTable"} <= families
        assert all(v > 0 for v in walls.values())
        assert not mails  # no failure, no mail

        train = raw_dir / "train_triplets.txt"
        train.write_bytes(train.read_bytes() + b"user\tsong\tmany\n")
        failed = build.run("-failed")
        assert failed.returncode == 30, failed.tail()
        found = samples(metrics)
        assert value(found, "last_success_timestamp_seconds") == succeeded_at
        assert value(found, "last_failure_timestamp_seconds") > succeeded_at
        assert value(found, "succeeded") == 0
        (reason,) = [
            dict(labels)["reason"] for (name, labels) in found if name == "msd_build_failure_info"
        ]
        assert reason.startswith("ImportTriplets(kind=train") and "'many'" in reason

        assert arrived.wait(30), failed.tail()
        (mail,) = mails
        assert mail.rcpt_tos == ["data-team@example.org"]
        assert "ImportTriplets" in mail.content.decode()
    finally:
        smtp.stop()
