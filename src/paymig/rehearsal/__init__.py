"""`paymig rehearse`: the whole migration rehearsed end to end on this machine.

A local AWS emulator (moto server) and two PostgreSQL servers stand in for AWS, the
on-prem source and the Aurora target. The production stack is applied to the emulator
with real Terraform, a payments dataset replicates with PostgreSQL logical replication
(standing in for DMS CDC), a load generator writes payments the whole time, and the real
controller, validator and rollback handler drive the migration through a fault and an
automatic rollback. Everything measured goes into a report and a timeline image.
"""
