"""Monthly cost estimate of a synthesized stack, and the budget gate.

:mod:`paymig.cost.prices` loads the one dated price table; :mod:`paymig.cost.model`
turns the synthesized Terraform plus the usage assumptions in config into priced line
items with pure functions.
"""
