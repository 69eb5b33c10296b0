"""The migration runbook, generated from the configuration and the synthesized stack.

:mod:`.facts` reads the real resource names out of a synthesized ``cdk.tf.json``,
:mod:`.commands` renders ``paymig`` command lines only after checking them against the
CLI, and :mod:`.render` writes the Markdown. Nothing here imports the jsii bindings.
"""
