"""Monthly cost estimate of a synthesized stack, and the budget gate.

:mod:`paymig.cost.prices` loads the one dated price table; :mod:`paymig.cost.estimate`
turns the synthesized Terraform plus the usage assumptions in config into priced line
items with pure functions: one rule per billable resource type, grouped by AWS service
under :mod:`paymig.cost.rules` and named in :mod:`paymig.cost.registry`.
:mod:`paymig.cost.budget` holds the budget gate, :mod:`paymig.cost.report` the renderings.
"""
