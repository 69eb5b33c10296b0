"""The write cutover, the fallback after it and the finish, step by step, idempotently."""
