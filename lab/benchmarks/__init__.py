"""Benchmarks beyond the forgetting and deployment comparisons, each a kind of sweep experiment
(`EXPERIMENT`, a `lab.sweep.base.Experiment`) so that the claims scorecard (lab.claims) and
`python -m lab sweep` run them with seeds on Ray Tune: the sleep experiment against its controls,
an optimizer race, associative recall, state tracking against length, two languages in context."""
