"""lab.metrics on hand-computed accuracy matrices (REFERENCE.md §7).

Row 0 = untrained (b_j); row i = after training on tasks 1..i. Formula indices are 1-based, so
R[i][j] of §7 is R[i, j-1] below. Every expected number is worked out by hand in the comments.
"""
import math

import numpy as np
import pandas as pd
import pytest

from lab import metrics as m

# Plain forgetting, T = 3.
R_A = np.array([
    [0.1, 0.2, 0.3],    # b_1 b_2 b_3
    [0.9, 0.3, 0.25],   # after task 1
    [0.5, 0.8, 0.4],    # after task 2
    [0.7, 0.6, 0.9],    # after task 3
])
# Task 1 improves after task 2 (0.6 → 0.9), then drops (0.5): max and final forms differ.
R_B = np.array([
    [0.1, 0.1, 0.1],
    [0.6, 0.1, 0.1],
    [0.9, 0.7, 0.2],
    [0.5, 0.8, 0.9],
])


def test_acc_bwt_fwt_hand_computed():
    # ACC = (0.7 + 0.6 + 0.9) / 3
    assert m.acc(R_A) == pytest.approx(2.2 / 3)
    # BWT = ((0.7 - 0.9) + (0.6 - 0.8)) / 2 = -0.2
    assert m.bwt(R_A) == pytest.approx(-0.2)
    # FWT = ((R[1][2] - b_2) + (R[2][3] - b_3)) / 2 = ((0.3 - 0.2) + (0.4 - 0.3)) / 2 = 0.1
    assert m.fwt(R_A) == pytest.approx(0.1)


def test_forgetting_plain_case_both_forms_agree():
    # j=1: max(0.9, 0.5) - 0.7 = 0.2 ; j=2: max(0.3, 0.8) - 0.6 = 0.2 -> 0.2
    assert m.forgetting_max(R_A) == pytest.approx(0.2)
    # j=1: 0.9 - 0.7 = 0.2 ; j=2: 0.8 - 0.6 = 0.2 -> 0.2
    assert m.forgetting_final(R_A) == pytest.approx(0.2)
    # after task 2: only j=1: 0.9 - 0.5 = 0.4 (both forms)
    assert m.forgetting_max(R_A, k=2) == pytest.approx(0.4)
    assert m.forgetting_final(R_A, k=2) == pytest.approx(0.4)


def test_recovery_makes_max_and_final_forms_differ():
    # max form, k=3: j=1: max(0.6, 0.9) - 0.5 = 0.4 ; j=2: max(0.1, 0.7) - 0.8 = -0.1 -> 0.15
    assert m.forgetting_max(R_B) == pytest.approx(0.15)
    # final form, k=3: j=1: 0.6 - 0.5 = 0.1 ; j=2: 0.7 - 0.8 = -0.1 -> 0.0
    assert m.forgetting_final(R_B) == pytest.approx(0.0)
    # k=2: j=1 only: 0.6 - 0.9 = -0.3 in both forms (task 1 got better)
    assert m.forgetting_max(R_B, k=2) == pytest.approx(-0.3)
    assert m.forgetting_final(R_B, k=2) == pytest.approx(-0.3)
    # BWT = ((0.5 - 0.6) + (0.8 - 0.7)) / 2 = 0 ; FWT = ((0.1 - 0.1) + (0.2 - 0.1)) / 2 = 0.05
    assert m.bwt(R_B) == pytest.approx(0.0)
    assert m.fwt(R_B) == pytest.approx(0.05)


def test_forgetting_max_excludes_row_zero():
    # b_1 = 0.9 is higher than anything after training; with row 0 the answer would be 0.8.
    R = np.array([[0.9, 0.5], [0.3, 0.2], [0.1, 0.8]])
    # j=1: max over l in {1}: 0.3 - 0.1 = 0.2
    assert m.forgetting_max(R) == pytest.approx(0.2)


def test_intransigence_sequence_and_mapping():
    # I_k = joint[k] - R[k][k]: 0.95 - 0.9, 0.85 - 0.8, 0.9 - 0.9
    out = m.intransigence(R_A, [0.95, 0.85, 0.9])
    assert out["per_task"] == pytest.approx({1: 0.05, 2: 0.05, 3: 0.0})
    assert out["mean"] == pytest.approx(0.1 / 3)
    part = m.intransigence(R_A, {2: 1.0})
    assert part["per_task"] == pytest.approx({2: 0.2}) and part["mean"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="T = 3"):
        m.intransigence(R_A, [0.9, 0.9])
    with pytest.raises(ValueError, match="tasks are 1..3"):
        m.intransigence(R_A, {4: 0.9})


def test_summarize_keys_and_values():
    s = m.summarize(R_B)
    assert set(s) == {"ACC", "BWT", "FWT", "forgetting_max", "forgetting_final"}
    assert s["ACC"] == pytest.approx(2.2 / 3)
    assert s["forgetting_max"] == pytest.approx(0.15)
    assert s["forgetting_final"] == pytest.approx(0.0)


def test_single_task_is_nan_where_undefined():
    R = np.array([[0.1], [0.8]])
    assert m.acc(R) == pytest.approx(0.8)
    for f in (m.bwt, m.fwt, m.forgetting_max, m.forgetting_final):
        assert math.isnan(f(R))
    s = m.summarize(R)
    assert s["ACC"] == pytest.approx(0.8) and math.isnan(s["BWT"])


@pytest.mark.parametrize("bad, msg", [
    (np.zeros((3, 3)), "shape"),
    (np.zeros(4), "2-D"),
    (np.zeros((1, 0)), "shape"),
    (np.array([[0.1, 0.2], [np.nan, 0.3], [0.4, 0.5]]), "row 1, column 0"),
    (np.array([[0.1], [np.inf]]), "non-finite"),
])
def test_bad_matrices_raise(bad, msg):
    with pytest.raises(ValueError, match=msg):
        m.summarize(bad)


def test_bad_k_raises():
    with pytest.raises(ValueError, match="k must be"):
        m.forgetting_max(R_A, k=4)
    with pytest.raises(ValueError, match="k must be"):
        m.forgetting_final(R_A, k=0)


def _tidy(R):
    rows = [{"after_task": i, "eval_task": j + 1, "accuracy": R[i, j]}
            for i in range(R.shape[0]) for j in range(R.shape[1])]
    return pd.DataFrame(rows)


def test_matrix_from_frame_round_trip_any_row_order():
    df = _tidy(R_B).sample(frac=1.0, random_state=3).reset_index(drop=True)
    df["model"] = "hope"  # extra columns are fine
    np.testing.assert_allclose(m.matrix_from_frame(df), R_B)


def test_matrix_from_frame_rejects_missing_duplicate_and_bad_columns():
    df = _tidy(R_A)
    with pytest.raises(ValueError, match="after_task=2, eval_task=3"):
        m.matrix_from_frame(df[~((df.after_task == 2) & (df.eval_task == 3))])
    with pytest.raises(ValueError, match="twice"):
        m.matrix_from_frame(pd.concat([df, df.iloc[[0]]]))
    with pytest.raises(ValueError, match="accuracy"):
        m.matrix_from_frame(df.drop(columns=["accuracy"]))
    with pytest.raises(ValueError, match="eval_task must be in 1..T"):
        m.matrix_from_frame(df.assign(eval_task=df.eval_task - 1))
    nan_df = df.copy()
    nan_df.loc[0, "accuracy"] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        m.matrix_from_frame(nan_df)


def test_mean_std_sample_std():
    out = m.mean_std([{"ACC": 1.0, "BWT": 2.0}, {"ACC": 3.0, "BWT": 2.0}])
    # mean 2; sample std = sqrt(((1-2)^2 + (3-2)^2) / (2-1)) = sqrt(2)
    assert out["ACC"]["mean"] == pytest.approx(2.0)
    assert out["ACC"]["std"] == pytest.approx(math.sqrt(2))
    assert out["BWT"] == pytest.approx({"mean": 2.0, "std": 0.0})
    # three runs: 0.2, 0.4, 0.9 -> mean 0.5, var = (0.09 + 0.01 + 0.16) / 2 = 0.13
    out = m.mean_std([{"x": 0.2}, {"x": 0.4}, {"x": 0.9}])
    assert out["x"]["mean"] == pytest.approx(0.5)
    assert out["x"]["std"] == pytest.approx(math.sqrt(0.13))


def test_mean_std_single_run_and_errors():
    assert m.mean_std([{"ACC": 0.7}]) == {"ACC": {"mean": 0.7, "std": 0.0}}
    with pytest.raises(ValueError, match="no results"):
        m.mean_std([])
    with pytest.raises(ValueError, match="keys"):
        m.mean_std([{"ACC": 0.7}, {"BWT": 0.1}])
    with pytest.raises(ValueError, match="numeric"):
        m.mean_std([{"ACC": "high"}])


def test_mean_std_of_summaries_across_seeds():
    out = m.mean_std([m.summarize(R_A), m.summarize(R_B)])
    # BWT: -0.2 and 0.0 -> mean -0.1, sample std = sqrt(0.01 + 0.01) = sqrt(0.02)
    assert out["BWT"]["mean"] == pytest.approx(-0.1)
    assert out["BWT"]["std"] == pytest.approx(math.sqrt(0.02))
