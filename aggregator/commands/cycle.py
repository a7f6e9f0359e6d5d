"""The commands that run the pipeline: run, poll, publish, worker."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from aggregator import schedule, workers
from aggregator.config import Config, config_from_args
from aggregator.pipeline import CycleReport, Pipeline
from aggregator.progress import TerminalProgress
from aggregator.publish.files import check_folder
from aggregator.store import connect


def check_targets(config: Config) -> None:
    """What a command writes to, checked before the first poll, not after it: the database
    (reachable, writable, this version's schema), then the output folder."""
    connect(config.db_url).dispose()
    check_folder(config.out_dir)


def cmd_run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_targets(config)
    return schedule.run(config, args.once)


def cmd_poll(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    progress = TerminalProgress()
    with Pipeline(config, progress=progress) as pipeline:
        results = pipeline.poll()
    progress.close()
    for r in results:
        line = f"{r.source_id:<24} {r.outcome:<13}"
        line += f" {r.error or r.note}" if r.error or r.note else f" +{r.new_entries}"
        print(line)
    report = CycleReport(sources=results)
    ok = len(results) - len(report.failed) - len(report.waiting)
    print(f"Sources: {ok} ok, {len(report.failed)} failing, {len(report.waiting)} waiting")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_targets(config)
    progress = TerminalProgress()
    report = CycleReport()
    with Pipeline(config, progress=progress) as pipeline:
        pipeline.process(report)
    progress.close()
    print_report(report)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    workers.check_worker_config(config)  # before procrastinate is imported: one line
    from aggregator.workers.runner import run_worker

    check_targets(config)
    queues = None if args.queues == "all" else [args.queues]
    run_worker(config, args.name, queues)
    return 0


def print_report(report: CycleReport, stream: TextIO | None = None) -> None:
    print("\n".join(report.summary()), file=stream or sys.stdout)
