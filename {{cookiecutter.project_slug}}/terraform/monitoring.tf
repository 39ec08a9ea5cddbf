# ---------------------------------------------------------------- Alarms (CodeDeploy rollback trigger)

# One per app function and alias ("<function key>/<alias>").
resource "aws_cloudwatch_metric_alarm" "app_errors" {
  for_each = local.names.app_function_aliases

  alarm_name        = local.names.alarms[each.key]
  alarm_description = "Errors of ${local.app_functions[each.value.function]} through its ${each.value.alias} alias. CodeDeploy stops and rolls back a deployment of that alias while this is in ALARM."
  namespace         = "AWS/Lambda"
  metric_name       = "Errors"
  dimensions = {
    FunctionName = local.app_functions[each.value.function]
    Resource     = "${local.app_functions[each.value.function]}:${each.value.alias}"
  }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_error_threshold
  # No invocations is not a failure (a canary may see little traffic).
  treat_missing_data = "notBreaching"
  alarm_actions      = [aws_sns_topic.release_events.arn]
  ok_actions         = [aws_sns_topic.release_events.arn]
}

moved {
  from = aws_cloudwatch_metric_alarm.app_errors["staging"]
  to   = aws_cloudwatch_metric_alarm.app_errors["app/staging"]
}

moved {
  from = aws_cloudwatch_metric_alarm.app_errors["production"]
  to   = aws_cloudwatch_metric_alarm.app_errors["app/production"]
}

# ---------------------------------------------------------------- Release notifications

resource "aws_sns_topic" "release_events" {
  name              = local.names.topic
  display_name      = "${local.name} releases"
  kms_master_key_id = aws_kms_key.pipeline.arn
}

resource "aws_sns_topic_policy" "release_events" {
  arn = aws_sns_topic.release_events.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "ReleaseStatusRule"
        Effect    = "Allow"
        Principal = { Service = "events.amazonaws.com" }
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.release_events.arn
        Condition = { ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.release_status.arn } }
      },
      {
        Sid       = "AppErrorAlarms"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.release_events.arn
        Condition = { ArnEquals = { "aws:SourceArn" = values(local.arns.alarms) } }
      },
      {
        # Replacing the default topic policy must not lock the account's own principals out.
        Sid       = "AccountPrincipals"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action = [
          "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:AddPermission", "sns:RemovePermission",
          "sns:DeleteTopic", "sns:Subscribe", "sns:ListSubscriptionsByTopic", "sns:Publish",
        ]
        Resource = aws_sns_topic.release_events.arn
      },
    ]
  })
}

resource "aws_sns_topic_subscription" "email" {
  count = var.notification_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.release_events.arn
  protocol  = "email"
  endpoint  = var.notification_email
}

# A release that ends in one of its own end states publishes its outcome with the provenance chain
# itself (NotifyRelease in state_machine.asl.json). A release that times out or is stopped never
# reaches those states: this rule reports those two. One notification per release either way.
resource "aws_cloudwatch_event_rule" "release_status" {
  name        = local.names.rules.release_status
  description = "Executions of ${local.state_machine_name} that timed out or were stopped"
  event_pattern = jsonencode({
    source      = ["aws.states"]
    detail-type = ["Step Functions Execution Status Change"]
    detail = {
      stateMachineArn = [aws_sfn_state_machine.release.arn]
      status          = ["TIMED_OUT", "ABORTED"]
    }
  })
}

resource "aws_cloudwatch_event_target" "release_status" {
  rule      = aws_cloudwatch_event_rule.release_status.name
  target_id = "release-events-topic"
  arn       = aws_sns_topic.release_events.arn

  # A readable one-liner instead of the raw event JSON in people's inboxes.
  input_transformer {
    input_paths = {
      execution = "$.detail.name"
      status    = "$.detail.status"
      arn       = "$.detail.executionArn"
    }
    input_template = "\"Release ${local.state_machine_name} execution <execution> finished with status <status> (<arn>).\""
  }
}
