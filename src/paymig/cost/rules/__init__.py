"""Pricing rules, one module per AWS service group.

Each rule is a pure function of a :class:`~paymig.cost.context.Context` (and, for a
per-resource rule, one :class:`~paymig.cost.stack_view.Resource`) returning line items whose
``basis`` states the formula in words. :mod:`paymig.cost.registry` names which rule prices
which resource type.
"""
