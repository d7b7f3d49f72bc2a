"""Deployment after pretraining as a session: the same verbs and views as the forgetting comparison
(`ForgettingSession`), with a `DeployJob` behind them (lab.deploy): comparisons run and kept while
a user is on the page, beside the shipped reference deployment, which a live re-run checks."""
from __future__ import annotations

from lab.deploy import DeployJob, DeploySettings, variant_label
from lab.deploy.summary import Deployment
from lab.sessions.base import exclusive
from lab.sessions.forgetting import ForgettingSession

SHIPPED = "The shipped deployment comparison (precomputed)"


def describe_deploy(settings: DeploySettings) -> str:
    variants = ", ".join(variant_label(v) for v in settings.variants)
    return (f"{variants} · pretraining {settings.pretrain_steps} steps on {settings.base_tasks} languages · "
            f"{settings.new_tasks} new languages × {settings.rounds} rounds × {settings.deploy_steps} steps · "
            f"{settings.seeds} seed{'s' if settings.seeds != 1 else ''} · {settings.preset}")


class DeploymentSession(ForgettingSession):
    """Deployment comparisons of this session and the shipped one (see lab.sessions.forgetting)."""

    kind = "deployment"
    Settings = DeploySettings
    refusal = "This deployment cannot run"
    shipped_label = SHIPPED
    assets = "assets/deployment/"

    def __init__(self, shipped: Deployment | None = None, shipped_problem: str | None = None):
        super().__init__(shipped, shipped_problem)

    def _apply(self, settings: DeploySettings) -> None:
        key = settings.to_json()
        kept = self.kept_label(key)
        if kept is not None:
            self.show(kept)
            self.notices.add("info", f"These settings were already run in this session: showing the kept result "
                                     f"“{kept}”.")
            return
        self._queue(lambda: DeployJob(settings), describe_deploy(settings), "run", key)

    @exclusive
    def request_rerun(self, seeds: list[int], methods: list[str] | None = None, joint: bool = False) -> bool:
        """Queue a live re-run of the shipped deployment for these seeds (with its stored settings)."""
        if self.shipped is None:
            self.notices.add("error", "There is no shipped deployment to re-run.")
            return False
        seeds = [int(s) for s in seeds]
        bad = [s for s in seeds if s not in self.shipped.seeds]
        if not seeds or bad:
            self.notices.add("error", f"Choose seeds of the shipped deployment ({', '.join(map(str, self.shipped.seeds))})"
                                      + (f"; {bad[0]} is not one of them." if bad else "."))
            return False
        settings = DeploySettings.from_dict(self.shipped.summary["settings"])
        label = f"Live re-run of the shipped deployment (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})"
        self._queue(lambda: DeployJob(settings, seeds=seeds), label, "rerun", f"rerun:{seeds}",
                    reference=self.shipped_label)
        return True
