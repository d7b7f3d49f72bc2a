"""Architectures side by side on one continual stream: the code behind `python -m lab forget`,
the Forgetting page (`lab.sessions.forgetting`) and the shipped comparison in assets/forgetting/,
so that all of them give the same accuracy matrix for the same settings.

    settings = ForgetSettings(models=("transformer", "hope"), methods=("naive", "replay"), joint=True)
    result = run_settings(settings, progress)          # what the CLI does
    job = ComparisonJob.from_settings(settings)        # what the page does, a few steps at a time
    while not job.done:
        job.advance(budget_s=0.25)
    result = job.result()
    print(describe_comparison(result.summary))

The modules, each building on the ones before it:

    settings.py  ForgetSettings, the methods, seeded / joint_config (one run's RunConfig)
    summary.py   the numbers: run_metrics, build_summary, per_task, differences, matrix_agreement, summary_table
    report.py    the numbers in plain sentences: describe_comparison, describe_settings
    store.py     Comparison (a finished one): save / load, check_agreement, drift_from_defaults
    job.py       ComparisonJob (the runs, on the one engine), compare, run_settings, rerun_job, ComparisonError
"""
from __future__ import annotations

from lab.forgetting.job import ComparisonError, ComparisonJob, Unit, compare, rerun_job, run_settings
from lab.forgetting.report import MARGIN, describe_comparison, describe_settings
from lab.forgetting.settings import DEFAULT_REPLAY, METHODS, ForgetSettings, joint_config, method_label, seeded
from lab.forgetting.store import FILES, Comparison, check_agreement, config_changes, drift_from_defaults
from lab.forgetting.summary import (FORGETTING_FINAL_FORM, FORGETTING_FORM, JOINT_COLUMNS, MATRIX_COLUMNS,
                                    build_summary, differences, matrix_agreement, per_task, run_metrics,
                                    summary_table)

__all__ = ["ForgetSettings", "ComparisonJob", "Comparison", "ComparisonError", "compare", "run_settings", "rerun_job",
           "describe_comparison", "summary_table", "per_task", "differences", "matrix_agreement",
           "check_agreement", "config_changes", "drift_from_defaults", "run_metrics", "METHODS", "DEFAULT_REPLAY",
           "FORGETTING_FORM",
           # and what the page, the CLI and the tests import besides
           "Unit", "build_summary", "describe_settings", "method_label", "seeded", "joint_config", "MARGIN",
           "FILES", "MATRIX_COLUMNS", "JOINT_COLUMNS", "FORGETTING_FINAL_FORM"]
