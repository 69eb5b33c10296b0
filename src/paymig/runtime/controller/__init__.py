"""The migration controller: gates, shifts, rollback, audit trail (pure core + boto3 shell)."""
