"""AWS's documented behaviour, as pure functions, where the local emulator differs.

moto (the local AWS emulator) forgives or skips behaviour that AWS documents: it does not
evaluate alarms from metric data, implements no composite alarms, and filters SNS
messages more loosely. The modules here encode what AWS's documentation says, each rule
next to the page it comes from, so that `paymig check`, the controller and the rehearsal
can rely on AWS's semantics instead of the emulator's. No boto3, no I/O.

- :mod:`.sns_filter`: SNS subscription filter policies (matching and validation).
- :mod:`.sns_lambda_event`: the event SNS hands to a subscribed Lambda function.
- :mod:`.cloudwatch_alarm`: metric alarm evaluation (M of N, missing data).
- :mod:`.cloudwatch_metric_math`: the metric-math subset our alarms use.
- :mod:`.cloudwatch_composite`: composite alarm rules.
- :mod:`.cloudwatch_notification`: the SNS message bodies that alarms publish.
- :mod:`.route53_weighted`: which weighted record Route 53 answers, and calculated
  health checks.
"""
