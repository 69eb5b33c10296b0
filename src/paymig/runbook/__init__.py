"""The migration runbook, generated from the configuration and the synthesized stack.

:mod:`.facts` reads the real resource names out of a synthesized ``cdk.tf.json``;
:mod:`.context` gathers every value the runbook prints (those facts, configuration
values, figures computed by the code that owns them, :mod:`.consistency` warnings and the
:mod:`.diagram`); the Jinja2 templates under ``templates/`` hold the prose; :mod:`.render`
puts them together. Every ``paymig`` command line is rendered by :mod:`.commands` only
after the caller's checker (the CLI's, built from the typer app) has accepted it.
Nothing here imports the CLI or the jsii bindings.
"""
