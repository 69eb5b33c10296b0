"""AWS Lambda handlers whose code lives in this repository."""
