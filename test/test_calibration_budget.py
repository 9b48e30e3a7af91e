"""Cost model and latency-budget chooser (dts_planner.calibration.budget): pure, no model."""

from __future__ import annotations

import math

import pytest

from dts_planner.calibration import BudgetChooser, Candidate, CostModel, pareto_frontier

# A constructed table: (spec, fidelity dB, predicted s)
TABLE = [
    Candidate("ddim:num_steps=5", 30.0, 0.10),
    Candidate("ddim:num_steps=10", 36.0, 0.20),
    Candidate("dts:chunk=10", 36.0, 0.15),           # ties ddim10 on fidelity, faster
    Candidate("dpm_solver:num_steps=10", 35.9, 0.12),
    Candidate("ddim:num_steps=20", 40.0, 0.40),
    Candidate("ddim:num_steps=50", 50.0, 1.00),
]


def test_cost_model_interpolates_extrapolates_and_applies_the_overhead():
    model = CostModel({1: 0.020, 2: 0.030, 6: 0.070}, overhead=1.5)
    assert model.call_s(1) == 0.020 and model.call_s(6) == 0.070
    assert model.call_s(4) == pytest.approx(0.050)             # between 2 and 6
    assert model.call_s(8) == pytest.approx(0.090)             # along the last two points
    assert model.call_s(0) == 0.020                            # below the smallest measured
    assert model.model_s([1, 1, 4]) == pytest.approx(0.090)
    assert model.predict_s([1, 1, 4]) == pytest.approx(0.135)
    assert CostModel({4: 0.04}).call_s(8) == pytest.approx(0.08)   # one size: proportional
    with pytest.raises(ValueError):
        CostModel({})
    with pytest.raises(ValueError):
        CostModel({1: 0.0})
    with pytest.raises(ValueError):
        CostModel({1: 0.01}, overhead=0)


@pytest.mark.parametrize("budget, spec", [
    (1.0, "ddim:num_steps=50"),            # everything fits: the best fidelity
    (0.99, "ddim:num_steps=20"),
    (0.40, "ddim:num_steps=20"),           # predicted == budget fits
    (0.25, "dts:chunk=10"),                # tie at 36 dB with ddim10: the faster one
    (0.15, "dts:chunk=10"),
    (0.149, "dpm_solver:num_steps=10"),
    (0.11, "ddim:num_steps=5"),
])
def test_the_chooser_picks_the_best_fidelity_that_fits(budget, spec):
    choice = BudgetChooser(TABLE).choose(budget)
    assert (choice.spec, choice.miss) == (spec, False)
    assert choice.predicted_s <= budget and choice.correction == 1.0


def test_when_nothing_fits_the_fastest_is_chosen_and_it_is_a_miss():
    choice = BudgetChooser(TABLE).choose(0.05)
    assert (choice.spec, choice.miss, choice.predicted_s) == ("ddim:num_steps=5", True, 0.10)


def test_ties_within_tie_db_go_to_the_faster_and_headroom_shrinks_the_budget():
    assert BudgetChooser(TABLE, tie_db=0.2).choose(0.25).spec == "dpm_solver:num_steps=10"
    assert BudgetChooser(TABLE, headroom=0.5).choose(0.8).spec == "ddim:num_steps=20"
    # equal fidelity and time: the spec decides, so the choice never depends on the order
    twins = [Candidate("b", 30.0, 0.1), Candidate("a", 30.0, 0.1)]
    assert BudgetChooser(twins).choose(1.0).spec == BudgetChooser(twins[::-1]).choose(1.0).spec


def test_measured_times_slower_than_predicted_change_the_choice():
    chooser = BudgetChooser(TABLE)
    assert chooser.choose(0.45).spec == "ddim:num_steps=20"
    assert chooser.observe("ddim:num_steps=20", 0.60) == pytest.approx(1.5)
    assert chooser.correction("ddim:num_steps=20") == pytest.approx(1.5)   # first one as is
    assert chooser.predicted_s("ddim:num_steps=20") == pytest.approx(0.60)
    # the global factor now applies to the configurations that have not run
    assert chooser.predicted_s("dts:chunk=10") == pytest.approx(0.225)
    choice = chooser.choose(0.45)              # ddim20 now 0.6 s: the best that fits, 36 dB
    assert choice.spec == "dts:chunk=10" and not choice.miss
    assert choice.correction == pytest.approx(1.5)
    # a configuration's own measurements win over the global factor
    chooser.observe("dts:chunk=10", 0.15)
    assert chooser.correction("dts:chunk=10") == pytest.approx(1.0)
    assert chooser.correction("ddim:num_steps=20") == pytest.approx(1.5)
    assert 1.0 < chooser.correction() < 1.5
    chooser.reset()
    assert chooser.choose(0.45).spec == "ddim:num_steps=20"


def test_the_correction_is_a_moving_average_of_measured_over_predicted():
    chooser = BudgetChooser(TABLE, smoothing=0.5)
    for measured in (0.2, 0.2, 0.2):                      # ratio 2 three times
        chooser.observe("ddim:num_steps=5", measured)
    assert chooser.correction("ddim:num_steps=5") == pytest.approx(2.0)
    chooser.observe("ddim:num_steps=5", 0.1)              # ratio 1: halfway in log space
    assert 1.0 < chooser.correction("ddim:num_steps=5") < 2.0
    expected = math.exp((0.5 * 0.5 * 0.5 + 0.5 * 0.5 + 0.5) * math.log(2) / (1 - 0.5 ** 4)
                        * 0.5)
    assert chooser.correction("ddim:num_steps=5") == pytest.approx(expected)


def test_the_chooser_refuses_bad_input_with_the_reason():
    chooser = BudgetChooser(TABLE)
    with pytest.raises(ValueError, match="not one of the chooser"):
        chooser.observe("ddim:num_steps=7", 0.1)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="budget"):
            chooser.choose(bad)
        with pytest.raises(ValueError, match="measured"):
            chooser.observe("ddim:num_steps=5", bad)
    with pytest.raises(ValueError, match="unique"):
        BudgetChooser(TABLE + TABLE[:1])
    with pytest.raises(ValueError, match="at least one"):
        BudgetChooser([])
    with pytest.raises(ValueError, match="predicted time"):
        BudgetChooser([Candidate("x", 1.0, 0.0)])


def test_the_frontier_keeps_only_configurations_nothing_faster_beats():
    specs = [c.spec for c in pareto_frontier(TABLE)]
    assert specs == ["ddim:num_steps=5", "dpm_solver:num_steps=10", "dts:chunk=10",
                     "ddim:num_steps=20", "ddim:num_steps=50"]


def test_a_slower_configuration_within_the_tie_of_a_faster_one_is_neither_chosen_nor_frontier():
    converged = Candidate("srds:num_steps=50", 50.0004, 2.8)   # converges to DDIM-50
    table = [*TABLE, converged]
    assert BudgetChooser(table).choose(3.0).spec == "ddim:num_steps=50"
    assert converged not in pareto_frontier(table)
    assert BudgetChooser(table, tie_db=0.0).choose(3.0).spec == converged.spec


def test_a_configuration_fits_when_its_predicted_p95_does_and_the_spread_is_learned():
    chooser = BudgetChooser(TABLE, spread_prior=0.1)         # p95 = 1.18 x the prediction
    assert chooser.p95_s("ddim:num_steps=20") == pytest.approx(0.40 * math.exp(0.1645))
    assert chooser.choose(0.45).spec == "dts:chunk=10"         # ddim20 (0.40 s) p95 0.47 s
    assert chooser.choose(0.48).spec == "ddim:num_steps=20"
    for measured in (0.40, 0.401, 0.399, 0.40):                # steady plans: spread ~0
        chooser.observe("ddim:num_steps=20", measured)
    assert chooser.spread("ddim:num_steps=20") < 0.01
    assert chooser.spread("dts:chunk=10") < 0.01               # the nearest measured one's
    assert chooser.choose(0.41).spec == "ddim:num_steps=20"
    for measured in (0.30, 0.50, 0.30, 0.50):                  # scattered plans: wider p95
        chooser.observe("ddim:num_steps=20", measured)
    assert chooser.spread("ddim:num_steps=20") > 0.2
    assert chooser.p95_s("ddim:num_steps=20") > 1.3 * chooser.predicted_s("ddim:num_steps=20")
    assert chooser.choose(0.41).spec == "dts:chunk=10"
    with pytest.raises(ValueError, match="spread_prior"):
        BudgetChooser(TABLE, spread_prior=-0.1)


def test_an_unrun_configuration_takes_the_spread_of_the_nearest_in_time():
    chooser = BudgetChooser(TABLE, spread_prior=0.1)
    for measured in (0.10, 0.13, 0.09, 0.13, 0.10):            # short plans: jittery
        chooser.observe("ddim:num_steps=5", measured)
    for measured in (0.40, 0.401, 0.399, 0.40, 0.40):          # long plans: steady
        chooser.observe("ddim:num_steps=20", measured)
    assert chooser.spread("ddim:num_steps=5") > 0.1
    assert chooser.spread("dpm_solver:num_steps=10") == chooser.spread("ddim:num_steps=5")
    assert chooser.spread("ddim:num_steps=50") == chooser.spread("ddim:num_steps=20") < 0.01
    assert chooser.choose(1.02).spec == "ddim:num_steps=50"     # not widened by the short ones


def test_a_configuration_dropped_after_a_slow_plan_is_tried_again_once_recent_plans_say_it_fits():
    chooser = BudgetChooser(TABLE, spread_prior=0.1)
    for measured in (0.40, 0.401, 0.399, 0.40):                # steady: it fits 0.43 s
        chooser.observe("ddim:num_steps=20", measured)
    assert chooser.choose(0.43).spec == "ddim:num_steps=20"
    chooser.observe("ddim:num_steps=20", 0.60)                 # one slow plan: dropped
    assert chooser.choose(0.43).spec == "dts:chunk=10"
    tried_again = None
    for plan in range(40):                                     # the fallback runs steadily
        if chooser.choose(0.43).spec == "ddim:num_steps=20":
            tried_again = plan
            break
        chooser.observe("dts:chunk=10", 0.15)
    assert tried_again is not None and tried_again >= 3        # not at once, not never
    assert chooser.spread("ddim:num_steps=20") < 0.06


def test_an_unrun_configuration_takes_its_samplers_factor_until_that_sampler_is_long_unrun():
    table = [Candidate("ddim:num_steps=10", 36.0, 0.20),
             Candidate("ddim:num_steps=20", 40.0, 0.40),
             Candidate("srds:num_steps=16", 40.0, 0.32),
             Candidate("srds:num_steps=25", 44.0, 0.46)]
    chooser = BudgetChooser(table)
    for _ in range(6):                          # DDIM runs at 0.9x its calibrated time,
        chooser.observe("ddim:num_steps=10", 0.18)
        chooser.observe("srds:num_steps=16", 0.24)   # SRDS (batched calls) at 0.75x
    assert chooser.correction("ddim:num_steps=20") == pytest.approx(0.9, rel=0.02)
    assert chooser.correction("srds:num_steps=25") == pytest.approx(0.75, rel=0.02)
    assert chooser.choose(0.4).spec == "srds:num_steps=25"     # 0.46 s calibrated, 0.35 s here
    for _ in range(10):                         # SRDS stops running: its factor holds ...
        chooser.observe("ddim:num_steps=10", 0.18)
    assert chooser.correction("srds:num_steps=25") == pytest.approx(0.75, rel=0.02)
    for _ in range(10):                         # ... for a while, then fades
        chooser.observe("ddim:num_steps=10", 0.18)
    assert chooser.correction("srds:num_steps=25") > 0.85
