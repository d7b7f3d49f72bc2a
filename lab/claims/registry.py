"""The claims the lab puts to the test, in the lab's own words, each with its experiment as sweeps
(lab.sweep) and its effect (lab.claims.cards). Quote the papers only with attribution: the
`source` of each claim says where it is made."""
from __future__ import annotations

from lab.claims.cards import Claim, best_of, paired, per_model

CELL = ("cell",)
NL = "Behrouz et al., Nested Learning (NeurIPS 2025 and arXiv)"

CMS_FORGETTING = Claim(
    id="cms_forgetting",
    claim="A multi-frequency Continuum Memory System reduces catastrophic forgetting without replay: what the "
          "fast levels forget survives in the slow ones.",
    source=f"{NL}, the CMS section (REFERENCE.md §3).",
    experiment="HOPE (three CMS levels, 128 / 512 / 2,048 tokens) and a Transformer of the same size trained on the "
               "identical stream of three synthetic languages one after another, naive sequential training (no "
               "replay); forgetting in the max form (Chaudhry), paired by seed. Regime map: vocabulary overlap "
               "between the languages × steps per language.",
    effect_doc="forgetting of HOPE − forgetting of the Transformer (negative: HOPE forgets less)",
    direction=-1,
    headline={"experiment": "forget", "base": {"models": ["transformer", "hope"], "methods": ["naive"]}},
    effect=lambda r, by=(): paired(r, "forgetting", ("hope", "naive"), ("transformer", "naive"), by),
    regime={"experiment": "forget", "base": {"models": ["transformer", "hope"], "methods": ["naive"]},
            "grid": {"overlap": [0.0, 0.5, 1.0], "steps_per_task": [100, 250]}},
    regime_fields=("overlap", "steps_per_task"),
    caveats="Small models (about 120,000 parameters) on synthetic languages; a model that learned a task less well "
            "has less to forget, so the card's figure also shows what each learned.",
    context=("forgetting", "learned", "old_acc", "untrained_old", "ACC"),
    matched=lambda r, by=(): paired(r, "learned", ("hope", "naive"), ("transformer", "naive"), by),
    matched_doc="accuracy learned of HOPE − of the Transformer",
    quick={"preset": "tiny", "steps_per_task": 8, "n_tasks": 2, "eval_size": 8},
)

SAVINGS = Claim(
    id="savings",
    claim="Skills a fast level forgets re-emerge through the slower levels: a task seen again is relearned faster "
          "than it was first learned.",
    source=f"{NL}; the seed's reading of the CMS (REFERENCE.md §3, §7 'Savings').",
    experiment="Pretraining on three base languages, then deployment on three new languages with revisits (A B C A B "
               "C): HOPE and a Transformer fine-tuned online, and HOPE with only its CMS levels learning online "
               "(lab.deploy). Savings = 1 − steps to 80 % of the first-visit peak on the revisit / on the first visit. "
               "Regime map: steps per visit.",
    effect_doc="savings of HOPE fine-tuned − savings of the Transformer fine-tuned (positive: HOPE relearns faster)",
    direction=1,
    headline={"experiment": "deploy",
              "base": {"variants": ["transformer/finetune", "hope/finetune", "hope/cms_online"]}},
    effect=lambda r, by=(): paired(r, "savings", ("hope/finetune", "deploy"), ("transformer/finetune", "deploy"), by),
    regime={"experiment": "deploy", "base": {"variants": ["transformer/finetune", "hope/finetune"]},
            "grid": {"deploy_steps": [75, 300]}},
    regime_fields=("deploy_steps",),
    caveats="Savings are defined only where a language was learned on its first visit; online CMS learned none "
            "at this scale (see the deployment comparison), so it has no savings to show.",
    context=("savings", "learned", "final_ACC", "base_change"),
    matched=lambda r, by=(): paired(r, "learned", ("hope/finetune", "deploy"), ("transformer/finetune", "deploy"), by),
    matched_doc="accuracy learned on the first visits, HOPE fine-tuned − the Transformer fine-tuned",
    quick={"preset": "tiny", "pretrain_steps": 20, "deploy_steps": 6, "base_tasks": 1, "new_tasks": 2, "eval_every": 2,
           "eval_size": 8},
)

SLEEP = Claim(
    id="sleep",
    claim="Sleep (dream → grow → distill → reset → prune) moves knowledge from the fast level to the slow one and keeps "
          "old tasks.",
    source="The seed's description of HOPE's sleep; two 2026 papers titled 'Language Models Need Sleep' describe "
           "other procedures (REFERENCE.md §6): this is the lab's version.",
    experiment="HOPE trained on three languages with a sleep after every task, against the same stream with only the "
               "fast level reset (reset only) and with nothing (no sleep); accuracy on the old tasks at the end. "
               "Regime map: the levels' learning-rate scale × distillation steps.",
    effect_doc="accuracy on the old tasks with sleep − without sleep (positive: sleep keeps more)",
    direction=1,
    headline={"experiment": "sleep", "base": {}},
    effect=lambda r, by=(): paired(r, "old_tasks", ("hope", "sleep"), ("hope", "no_sleep"), by),
    regime={"experiment": "sleep", "base": {},
            "grid": {"level_lr_scale": [[1.0, 1.0, 1.0], [10.0, 10.0, 10.0]], "sleep.distill_steps": [50, 200]}},
    regime_fields=("level_lr_scale", "sleep.distill_steps"),
    caveats="The CMS levels of the default HOPE hold little task knowledge (the knowledge map), so there is little "
            "for a sleep to move.",
    context=("old_tasks", "ACC"),
    quick={"preset": "tiny", "steps_per_task": 8, "n_tasks": 2, "eval_size": 8,
           "sleep": {"distill_steps": 3, "dream_samples": 8, "repair_steps": 1}},
)

M3 = Claim(
    id="m3",
    claim="M3 (multi-scale momentum Muon) trains faster than AdamW and Muon.",
    source=f"{NL}, arXiv version, Algorithm 1 (REFERENCE.md §5).",
    experiment="The same model, seed and batches trained for 150 steps with AdamW, Muon and M3 (Muon and M3 on the "
               "weight matrices, AdamW on the rest, at one shared rate); mean training loss over the last 10 steps. "
               "Regime map: architecture × learning rate.",
    effect_doc="final loss with M3 − the better of AdamW and Muon (negative: M3 trains faster)",
    direction=-1,
    headline={"experiment": "race", "base": {"run": {"model": "hope"}}},
    effect=lambda r, by=(): per_model(r, lambda m: best_of(r, "final_loss", (m, "m3"),
                                                           [(m, "adamw"), (m, "muon")], by)),
    regime={"experiment": "race", "base": {},
            "grid": {"run.model": ["transformer", "hope"], "run.lr": [3e-4, 1e-3, 3e-3]}},
    regime_fields=("run.model", "run.lr"),
    caveats="150 steps of small models; M3 runs here without its second moment, which at an AdamW rate barely trains "
            "(the associative-memory page shows why).",
    context=("final_loss", "steps_to_target"),
    quick={"run": {"model": "hope", "preset": "tiny", "stream": {"steps_per_task": 10}}, "steps": 10},
)

RECALL = Claim(
    id="recall",
    claim="Needle-in-a-haystack recall favours attention by construction: softmax attention keeps every pair it has "
          "read, a fixed-size memory has to compress them.",
    source="Behrouz et al. (REFERENCE.md §8): needle tests favour attention and should not rank architectures in "
           "general.",
    experiment="Multi-query associative recall (key-value pairs in the context, then queries): the Transformer, "
               "Titans and HOPE trained on the same stream; accuracy on the answers. Regime map: pairs per context.",
    effect_doc="recall accuracy of the Transformer − of HOPE (positive: attention recalls better)",
    direction=1,
    headline={"experiment": "run", "base": {"stream": "recall", "tasks": 1, "steps": 600},
              "grid": {"model": ["transformer", "titans", "hope"]}},
    effect=lambda r, by=(): paired(r, "learned", ("transformer", "naive"), ("hope", "naive"), by),
    regime={"experiment": "run", "base": {"stream": "recall", "tasks": 1, "steps": 600},
            "grid": {"model": ["transformer", "hope"], "stream.words": [2, 8]}},
    regime_fields=("stream.words",),
    caveats="Short contexts (a few pairs); the papers' claim is about long contexts, where the gap should be larger.",
    context=("learned",),
    quick={"preset": "tiny", "steps": 10, "eval_size": 8},
)

TRACKING = Claim(
    id="tracking",
    claim="A self-referential (self-modifying) memory beats softmax attention on tasks that need sequential state "
          "tracking.",
    source=f"{NL}, on HOPE's self-modifying memory (REFERENCE.md §4, §7 'Sequential state tracking').",
    experiment="HOPE and a Transformer of the same size trained on parity and on composing permutations of 3 elements "
               "(16 symbols, the answer at the end), then measured at 16 and 32 symbols. Regime map: the training "
               "length.",
    effect_doc="accuracy of HOPE − of the Transformer at the trained length (positive: HOPE tracks the state better)",
    direction=1,
    headline={"experiment": "tracking", "base": {}, "grid": {"model": ["transformer", "hope"]}},
    effect=lambda r, by=(): paired(r, "acc_trained", ("hope", "naive"), ("transformer", "naive"), by),
    regime={"experiment": "tracking", "base": {"test_lengths": [8, 16, 32]},
            "grid": {"model": ["transformer", "hope"], "length": [8, 24]}},
    regime_fields=("length",),
    caveats="Every family reads learned absolute positions, so positions past the trained length are untrained for "
            "all of them: the accuracy at longer lengths (in the card's data) mixes state tracking with unseen "
            "positions. Two layers, a few hundred steps.",
    context=("acc_trained", "acc_longer", "chance"),
    quick={"preset": "tiny", "steps": 10, "eval_size": 16, "length": 8, "test_lengths": [8, 16]},
)

IN_CONTEXT = Claim(
    id="in_context",
    claim="With two new languages in one context, attention collapses, while HOPE with three levels nearly recovers "
          "the single-language performance.",
    source="Behrouz et al., Nested Learning (the Manchu and Kalamang/MTOB experiment, a figure, no table; "
           "REFERENCE.md §8).",
    experiment="One context holds a lesson of language A (its dictionary and worked examples), then one of B, then "
               "translation queries for both; models trained on contexts with A only, B only and both. Recovery = "
               "accuracy with both in context / with the language alone. HOPE (three levels) against a Transformer "
               "with full attention; beside them, on the same seeds, a sliding window holding one lesson, Titans, HOPE "
               "with one level and HOPE whose levels learn while reading the context. Every HOPE arm runs with its "
               "memory bounded (HopeConfig.memory_bound, HOPE's default; unbounded, it overflows on a context's "
               "padding). Control: what each learned with one language alone in context. Regime map: dictionary "
               "size.",
    effect_doc="recovery of HOPE − recovery of the Transformer (positive: HOPE loses less when both are in context)",
    direction=1,
    headline={"experiment": "incontext", "base": {"preset": "tiny", "steps": 600, "memory": "bounded"},
              "grid": {"arch": ["transformer", "transformer_window", "titans", "hope1", "hope", "hope_online"]}},
    effect=lambda r, by=(): paired(r, "recovery", ("hope", "naive"), ("transformer", "naive"), by),
    regime={"experiment": "incontext", "base": {"preset": "tiny", "steps": 600, "memory": "bounded"},
            "grid": {"arch": ["transformer", "hope"], "words": [3, 6]}},
    regime_fields=("words",),
    matched=lambda r, by=(): paired(r, "acc_single", ("hope", "naive"), ("transformer", "naive"), by),
    matched_doc="accuracy with one language alone in context, HOPE − Transformer",
    caveats="A miniature of the papers' setting: lessons of four words, tiny models (about 40,000 parameters, 600 "
            "steps); the papers' result is a figure for large models on real languages. HOPE runs with its memory "
            "bounded (its default): unbounded, it overflows at the padded tail of a context (runs of identical "
            "tokens; the loss stays finite because those positions are not scored, the gradient does not; "
            "lab/memory/self_modifying.py). A recovery ratio of a model near chance means nothing: read it beside "
            "the single-language accuracy (1/24 ignoring the context; about 1/4 picking any of the lesson's four "
            "target words, which is roughly where the other families are: this miniature measures where an "
            "answer comes from more than the translation itself). Training longer does not fix that at this "
            "size: the Transformer trained 3,000 steps instead of 600 reaches 0.28 with one language alone "
            "(0.23 at 600; tuning seed 100).",
    context=("recovery", "acc_single", "acc_A_A", "acc_both_sequential_A", "acc_B_B", "acc_both_sequential_B"),
    quick={"preset": "tiny", "steps": 10, "eval_size": 16},
)

CLAIMS: dict[str, Claim] = {c.id: c for c in (CMS_FORGETTING, SAVINGS, SLEEP, TRACKING, IN_CONTEXT, M3, RECALL)}
