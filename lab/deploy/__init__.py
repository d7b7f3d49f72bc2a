"""Deployment after pretraining: the knowledge cutoff, and what lifts it (learning while reading).

    settings = DeploySettings(variants=("hope/frozen", "hope/cms_online"), seeds=5)
    result = DeployJob(settings).run_to_end(progress)      # what `python -m lab deploy` does
    print(result.describe())

    settings.py  DeploySettings, the variants (architecture × way of deploying), their RunConfigs
    summary.py   the numbers (ACC, BWT, forgetting, savings, with 95 % intervals) and `Deployment`
    report.py    the numbers in plain sentences, paired by seed
    job.py       DeployJob: pretraining and deployment runs on the one engine
"""
from __future__ import annotations

from lab.deploy.job import DeployError, DeployJob, online_knowledge
from lab.deploy.report import describe_deployment
from lab.deploy.settings import VARIANTS, DeploySettings, Variant, variant_label
from lab.deploy.summary import KEYS, Deployment, build_summary, run_savings

__all__ = ["DeploySettings", "DeployJob", "DeployError", "Deployment", "VARIANTS", "Variant", "variant_label",
           "describe_deployment", "build_summary", "run_savings", "online_knowledge", "KEYS"]
