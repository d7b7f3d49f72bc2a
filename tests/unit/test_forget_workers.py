"""`forget` with a pool of worker processes (issue 15): the runs of a comparison are independent,
so training them in two processes must give the records, the accuracy matrix and the joint
reference of the serial run, exactly."""
from __future__ import annotations

import pandas as pd

from lab.forgetting import ForgetSettings, run_settings

TINY = dict(n_tasks=2, steps_per_task=4, preset="tiny", eval_size=16, eval_every=2)


def test_two_workers_give_the_serial_records_exactly():
    settings = ForgetSettings(models=("transformer", "titans", "hope"), methods=("naive", "replay"), joint=True,
                              replay=8, **TINY)
    progress = []
    serial = run_settings(settings)
    pooled = run_settings(settings, progress=lambda f, label: progress.append(f), workers=2)
    pd.testing.assert_frame_equal(pooled.records, serial.records, check_exact=True)
    pd.testing.assert_frame_equal(pooled.matrix, serial.matrix, check_exact=True)
    pd.testing.assert_frame_equal(pooled.joint, serial.joint, check_exact=True)
    assert len(serial.records) > 0 and set(serial.records["model"]) == {"transformer", "titans", "hope"}
    assert pooled.task_names == serial.task_names and pooled.boundaries_tokens == serial.boundaries_tokens
    assert progress[-1] == 1.0 and progress == sorted(progress)
    drop = ("wall_seconds",)
    assert {k: v for k, v in pooled.summary.items() if k not in drop} == \
        {k: v for k, v in serial.summary.items() if k not in drop}
