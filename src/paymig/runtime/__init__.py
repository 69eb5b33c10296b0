"""Plain Python that runs at migration time: validator, controller, Lambda handlers."""
