"""Local stand-ins for real infrastructure: PostgreSQL servers and an AWS emulator."""
