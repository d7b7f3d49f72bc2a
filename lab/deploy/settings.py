"""What a deployment comparison runs (REFERENCE.md §3 "Online", §7 "Savings"; issue: learning while
reading): a pretraining phase on a base mixture of languages, then deployment on new languages
arriving one after another, with revisits, under one of several ways of learning (or not).

    pretraining   languages 1..n_base mixed in every batch, every parameter learns (`pretrain_steps`)
    deployment    new languages n_base+1 … one after another, `rounds` times (A B C A B C …),
                  `deploy_steps` steps each, `deploy_batch` documents a step (the online streams)

A variant is an architecture and a way to deploy it (`VARIANTS`):

    frozen        nothing learns: the knowledge cutoff of today's language models
    finetune      every weight learns online from what it reads (classical sequential training)
    replay        finetune with experience replay (the classical baseline against forgetting)
    cms_online    the backbone is frozen; the CMS levels learn while reading, at their frequencies
                  (`lab.online`); "+sleep": and a sleep phase after every task (`lab.sleep`)

Architectures: "transformer", "hope" (its three levels, 128 / 512 / 2,048 tokens) and "hope1" (HOPE
with one CMS level of the same total width, every `hope1_chunk` tokens).

The online defaults (rate 3e-5, slower levels learning 10× and 100× slower) were chosen on tuning
seeds 100 and 101 (`python -m lab.deploy.tune`), never on the reported seeds: the cell with the
highest final accuracy over all languages, base and new. The grid is the regime map of the README.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lab.config import Config, bounded, choice
from lab.models import PRESETS
from lab.run_config import RunConfig
from lab.sleep import SleepConfig
from lab.tasks.stream import StreamConfig
from lab.viz.palette import model_label

MODES = ("frozen", "finetune", "replay", "cms_online")


@dataclass(frozen=True)
class Variant:
    arch: str           # "transformer", "hope", "hope1"
    mode: str           # one of MODES
    sleep: bool = False

    @property
    def outer(self) -> bool:
        """Whether an outer optimizer trains the weights during deployment."""
        return self.mode in ("finetune", "replay")


VARIANTS: dict[str, Variant] = {
    "transformer/frozen": Variant("transformer", "frozen"),
    "transformer/finetune": Variant("transformer", "finetune"),
    "transformer/replay": Variant("transformer", "replay"),
    "hope/frozen": Variant("hope", "frozen"),
    "hope/finetune": Variant("hope", "finetune"),
    "hope/cms_online": Variant("hope", "cms_online"),
    "hope/cms_online+sleep": Variant("hope", "cms_online", sleep=True),
    "hope1/cms_online": Variant("hope1", "cms_online"),
}
ARCH_MODELS = {"transformer": "transformer", "hope": "hope", "hope1": "hope"}


def variant_label(name: str) -> str:
    """"HOPE, 1 level · CMS online + sleep" for "hope1/cms_online+sleep" (lab.viz.palette.model_label)."""
    return model_label(name)


@dataclass(frozen=True)
class DeploySettings(Config):
    """What `python -m lab deploy` and the deployment view run."""

    variants: tuple[str, ...] = field(default=tuple(VARIANTS), metadata={
        "doc": f"variants to compare, any of {', '.join(VARIANTS)}"})
    base_tasks: int = bounded(3, 1, 6, "languages of the pretraining mixture")
    new_tasks: int = bounded(3, 2, 6, "new languages of the deployment")
    rounds: int = bounded(2, 1, 4, "how many times the new languages come round (2: A B C A B C)")
    pretrain_steps: int = bounded(1500, 1, 100_000, "pretraining steps on the base mixture (batch 8)")
    deploy_steps: int = bounded(150, 1, 100_000, "deployment steps per language visit")
    deploy_batch: int = bounded(1, 1, 64, "documents read per deployment step (the online streams)")
    overlap: float = bounded(0.5, 0.0, 1.0, "source words shared between languages")
    seeds: int = bounded(5, 1, 20, "number of seeds: first_seed, first_seed + 1, …")
    first_seed: int = bounded(0, 0, 2**31 - 1, "the first seed (tune on other seeds than those reported)")
    preset: str = choice("small", tuple(PRESETS), "model size")
    lr: float = bounded(1e-3, 1e-6, 10.0, "learning rate of pretraining and of fine-tuning")
    online_lr: float = bounded(3e-5, 0.0, 10.0, "online learning rate of the CMS levels (times each level's scale)")
    level_lr_scale: tuple[float, ...] = bounded((1.0, 0.1, 0.01), 0.0, 100.0,
                                                "online rate multiplier per HOPE level (empty = 1)")
    online_chunks: tuple[int, ...] = bounded((), 1, 10_000_000, "chunk in tokens of each HOPE level while it learns "
                                                               "online (empty = the family's 128, 512, 2048)")
    hope1_chunk: int = bounded(128, 1, 100_000, "chunk in tokens of the single level of hope1")
    replay: int = bounded(64, 1, 100_000, "replay buffer in documents (the replay variants)")
    eval_every: int = bounded(10, 1, 100_000, "evaluate every K deployment steps")
    eval_size: int = bounded(32, 1, 4096, "held-out sequences per language")
    sleep_distill_steps: int = bounded(60, 0, 100_000, "distillation steps of a sleep (+sleep variants)")

    def check(self) -> None:
        if not self.variants:
            self.fail("variants", f"choose at least one of {', '.join(VARIANTS)}")
        if [v for v in self.variants if v not in VARIANTS] or len(set(self.variants)) != len(self.variants):
            self.fail("variants", f"each variant must be one of {', '.join(VARIANTS)}, named once")
        if self.online_chunks and len(self.online_chunks) != 3:
            self.fail("online_chunks", "give one chunk per HOPE level (3), or none")
        if any(VARIANTS[v].sleep for v in self.variants) and self.deploy_batch != 1:
            self.fail("deploy_batch", "the +sleep variants fold one stream's fast weights into the model: use 1")
        self.deploy_config("hope/cms_online", 0)                 # the runs' own checks, before any work

    @property
    def archs(self) -> list[str]:
        return list(dict.fromkeys(VARIANTS[v].arch for v in self.variants))

    def _stream(self, seed: int, **extra) -> StreamConfig:
        return StreamConfig(kind="languages", n_tasks=self.base_tasks + self.new_tasks, overlap=self.overlap,
                            seed=seed, **extra)

    def _arch(self, arch: str) -> dict:
        out = {"model": ARCH_MODELS[arch], "preset": self.preset, "lr": self.lr, "eval_size": self.eval_size}
        if arch == "hope1":
            out["cms_chunk_tokens"] = (self.hope1_chunk,)
        return out

    def pretrain_config(self, arch: str, seed: int) -> RunConfig:
        """Every parameter learns on a uniform mixture of the base languages."""
        per_task = max(1, self.pretrain_steps // self.base_tasks)
        stream = self._stream(seed, schedule=tuple(range(self.base_tasks)), joint=True, steps_per_task=per_task)
        return RunConfig(stream=stream, seed=seed, eval_every=max(1, per_task * self.base_tasks), **self._arch(arch))

    def deploy_config(self, name: str, seed: int) -> RunConfig:
        """The deployment run of one variant (its weights come from the pretrained run)."""
        v = VARIANTS[name]
        order = tuple(range(self.base_tasks, self.base_tasks + self.new_tasks)) * self.rounds
        stream = self._stream(seed, schedule=order, steps_per_task=self.deploy_steps, batch_size=self.deploy_batch)
        arch = self._arch(v.arch)
        if v.mode == "cms_online" and v.arch == "hope":
            if self.level_lr_scale:
                arch["level_lr_scale"] = self.level_lr_scale
            if self.online_chunks:                  # the widths stay the family's: the pretrained weights fit
                arch["cms_chunk_tokens"] = self.online_chunks
        online = {"enabled": v.mode == "cms_online", "lr": self.online_lr}
        replay = {"replay": self.replay, "replay_extra": self.deploy_batch} if v.mode == "replay" else {}
        return RunConfig(stream=stream, seed=seed, eval_every=self.eval_every, trainable="all" if v.outer else "none",
                         online=online, **replay, **arch)

    def sleep_config(self) -> SleepConfig:
        return SleepConfig(distill_steps=self.sleep_distill_steps, dream_samples=128, repair_steps=20,
                           record_every=max(1, self.sleep_distill_steps // 10))

    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))
