"""paymig: migrate an on-premises payment system to AWS with zero downtime."""

__version__ = "0.1.0"
