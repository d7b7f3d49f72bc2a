"""The associative-memory explorer as a session (lab.sessions.memory_explorer): it computes what its
settings ask for in `advance`, keeps results per setting in a bounded cache, refuses bad values with
a notice, and gives the same numbers as lab.assoc and lab.optim.toys called directly."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from lab.assoc import KVStream, MemoryParams, all_equivalences, recall, sweep
from lab.optim.toys import SurfaceSpec, buffer_weights, orthogonal_tasks, trajectories
from lab.records import COLUMNS
from lab.sessions import SESSIONS
from lab.sessions.memory_explorer import SWEEPS, ExplorerSettings, MemoryExplorerSession

torch.set_num_threads(1)
SMALL = {"memories": ("delta", "titans"), "stream": {"n_pairs": 8, "d_key": 8, "d_value": 8, "seed": 3},
         "params": {"momentum": 0.3, "write_strength": 0.5, "decay": 0.9}}
MEMORY_JOBS = {"cosine", "recall", *(f"sweep:{f}" for f in SWEEPS)}


@pytest.fixture(scope="module")
def done() -> MemoryExplorerSession:
    session = MemoryExplorerSession()
    assert session.configure(**SMALL)
    session.finish()
    return session


def test_it_is_the_memory_session_and_starts_with_everything_pending():
    assert SESSIONS["memory"] is MemoryExplorerSession
    session = MemoryExplorerSession()
    assert session.busy and session.progress[0] == 0.0
    assert set(session.pending()) == MEMORY_JOBS | {"equivalences", "buffers", "tasks", "grid", "paths"}
    assert session.recall() is None and session.trajectories() is None          # nothing computed yet
    revision = session.revision
    assert session.advance(budget_s=0.0) == 1 and session.revision == revision + 1  # at least one whole result
    assert session.key_cosine() is not None


def test_results_are_the_numbers_of_lab_assoc_and_the_toys(done):
    s = done.settings
    assert not done.busy and done.progress == (1.0, "")
    pd.testing.assert_frame_equal(done.recall(), recall(["delta", "titans"], s.stream, s.params))
    pd.testing.assert_frame_equal(done.sweep("decay"), sweep(["delta", "titans"], s.stream, s.params, "decay",
                                                             list(SWEEPS["decay"]), seeds=2))
    pd.testing.assert_frame_equal(done.equivalences(), all_equivalences(0))
    pd.testing.assert_frame_equal(done.buffer_weights(), buffer_weights(horizon=100))
    pd.testing.assert_frame_equal(done.orthogonal_tasks(), orthogonal_tasks())
    pd.testing.assert_frame_equal(done.trajectories(), trajectories(SurfaceSpec(steps=150),
                                                                    {"adam": s.adam, "muon": s.muon, "m3": s.m3}))
    assert set(done.sweep("decay")["memory"]) == {"titans"}                        # DeltaNet has no decay
    with pytest.raises(ValueError, match="sweeps"):
        done.sweep("colour")


def test_records_are_the_recall_rows_in_tidy_form(done):
    rows = done.records()
    frame = done.recall()
    assert list(rows.columns[:len(COLUMNS)]) == COLUMNS and len(rows) == len(frame)
    assert (rows["metric"] == "recall_error").all() and list(rows["value"]) == list(frame["error"])
    assert list(rows["model"]) == list(frame["memory"]) and list(rows["age"]) == list(frame["age"])
    assert (rows["tokens"] == 8).all() and list(rows["step"]) == list(frame["pair"])


def test_a_memory_change_recomputes_the_memories_only_and_going_back_is_cached():
    session = MemoryExplorerSession()
    session.configure(**SMALL)
    session.finish()
    assert session.configure(stream={"correlation": 0.6})
    assert session.settings.stream.n_pairs == 8                          # a partial dict keeps the other fields
    assert set(session.pending()) == MEMORY_JOBS - {"sweep:correlation"}  # the toys and the ρ sweep are still there
    session.finish()
    session.configure(stream={"correlation": 0.0})
    assert not session.busy                                              # computed before: from the cache
    session.configure(buffers={"momentum": 0.5})
    assert session.pending() == ["buffers"]
    session.finish()
    session.configure(params={"decay": 0.95})                            # the decay sweep sets decay itself
    assert set(session.pending()) == MEMORY_JOBS - {"cosine", "sweep:decay"}


def test_bad_values_are_refused_with_a_notice_that_names_the_field():
    session = MemoryExplorerSession()
    before = session.settings
    cases = [({"stream": {"correlation": 1.5}}, "correlation"), ({"params": {"write_strength": 2.5}}, "write_strength"),
             ({"memories": ("gpt",)}, "memories"), ({"memories": ("delta", "delta")}, "at most once"),
             ({"optimizers": ("sgd",)}, "optimizers"), ({"tasks": {"n_tasks": 0}}, "n_tasks"),
             ({"memories": ("self_modifying",)}, "cannot run on key/value pairs")]
    for change, text in cases:
        assert not session.configure(**change)
        (kind, message), = session.notices.pop()
        assert kind == "error" and text in message and message.startswith("That setting is not allowed")
    assert session.settings == before


def test_no_memories_means_no_memory_work_and_empty_records():
    session = MemoryExplorerSession()
    assert session.configure(memories=(), optimizers=())
    assert not set(session.pending()) & (MEMORY_JOBS | {"paths"})
    session.finish()
    assert session.recall() is None and session.trajectories() is None
    assert session.records().empty and list(session.records().columns[:len(COLUMNS)]) == COLUMNS


def test_stop_drops_the_work_until_the_next_configure():
    session = MemoryExplorerSession()
    session.stop()
    assert not session.busy and session.advance() == 0
    session.configure(equivalence_seed=1)
    assert session.busy


def test_the_cache_is_bounded_least_recently_used_out_first():
    session = MemoryExplorerSession(cache_size=12)
    session.configure(**SMALL)
    session.finish()
    first = session.recall()
    for seed in (4, 5):
        session.configure(stream={"seed": seed})
        session.finish()
    assert len(session._cache) == 12
    session.configure(stream={"seed": 3})
    assert "recall" in session.pending()                                 # evicted: computed again
    session.finish()
    pd.testing.assert_frame_equal(session.recall(), first)


def test_snapshot_and_restore(done):
    snap = done.snapshot()
    other = MemoryExplorerSession()
    other.restore(snap)
    assert other.settings == done.settings and not other.busy
    pd.testing.assert_frame_equal(other.recall(), done.recall())
    other.configure(memories=("delta",))
    assert done.settings.memories == ("delta", "titans")                 # the snapshot is not shared state


def test_settings_round_trip_as_data():
    settings = ExplorerSettings(memories=("softmax",), stream=KVStream(n_pairs=5), params=MemoryParams(sharpness=3.0))
    assert ExplorerSettings.from_dict(settings.to_dict()) == settings
    assert ExplorerSettings.from_dict({"stream": {"n_pairs": "7"}}).stream.n_pairs == 7
