"""AWS Lambda handlers whose code lives in this repository; each has its own package."""
