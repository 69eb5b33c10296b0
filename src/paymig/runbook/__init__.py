"""The migration runbook, generated from the configuration and the synthesized stack.

:mod:`.facts` reads the real resource names out of a synthesized ``cdk.tf.json``,
:mod:`.commands` renders ``paymig`` command lines only after the caller's checker (the
CLI's, built from the typer app) has accepted them, and :mod:`.render` writes the
Markdown. Nothing here imports the CLI or the jsii bindings.
"""
