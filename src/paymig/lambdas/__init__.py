"""AWS Lambda handlers. Each module here is self-contained: it runs in its own image."""
