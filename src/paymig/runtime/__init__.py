"""Runtime code of the migration: controller, and later preflight, validator, cost."""
