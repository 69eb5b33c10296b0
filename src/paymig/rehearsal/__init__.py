"""`paymig rehearse`: the whole migration rehearsed end to end on this machine.

A local AWS emulator (moto server) and two PostgreSQL servers stand in for AWS, the
on-prem source and the Aurora target. The production stack is applied to the emulator
with real Terraform; a payments dataset replicates with PostgreSQL logical replication
(standing in for DMS CDC); virtual clients follow the Route 53 weights to the two sides
(the production payment API behind a load balancer stand-in, and an on-prem API
stand-in); a real fault on the AWS side's path to its database is detected by the
stack's alarms from the metrics it causes, and the rollback Lambda, delivered the
composite's notification as SNS would, restores the weights under its own role.
Everything measured goes into a report and a timeline image; every stand-in is named.
"""
