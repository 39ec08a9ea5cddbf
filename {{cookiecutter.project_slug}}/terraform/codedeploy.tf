resource "aws_codedeploy_app" "app" {
  name             = local.codedeploy_app
  compute_platform = "Lambda"
}

locals {
  # Each alias shifts with its own strategy. Staging serves no users, only the smoke checks, which
  # run once it is fully shifted: a canary there only delays the release (AllAtOnce by default).
  # Production's canary or linear shift is what lets the alarm stop a bad version early.
  alias_deployment_strategies = {
    staging    = var.staging_deployment_strategy
    production = var.deployment_strategy
  }
  alias_deployment_configs = { for alias, strategy in local.alias_deployment_strategies : alias => "CodeDeployDefault.Lambda${strategy}" }
}

# One group per app function and alias ("<function key>/<alias>"; the primary function's groups
# are named after the alias). The deploy function creates deployments with an AppSpec naming the
# function, alias and the current/target versions; CodeDeploy shifts the traffic and rolls back
# when that alias's alarm fires.
resource "aws_codedeploy_deployment_group" "alias" {
  for_each = local.names.app_function_aliases

  app_name               = aws_codedeploy_app.app.name
  deployment_group_name  = local.names.deployment_groups[each.key]
  service_role_arn       = aws_iam_role.codedeploy.arn
  deployment_config_name = local.alias_deployment_configs[each.value.alias]

  deployment_style {
    deployment_type   = "BLUE_GREEN"
    deployment_option = "WITH_TRAFFIC_CONTROL"
  }

  alarm_configuration {
    enabled = true
    alarms  = [aws_cloudwatch_metric_alarm.app_errors[each.key].alarm_name]
  }

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
  }

  # CodeDeploy checks alarms with the role's permissions: the policy must exist first.
  depends_on = [aws_iam_role_policy.codedeploy]
}

moved {
  from = aws_codedeploy_deployment_group.alias["staging"]
  to   = aws_codedeploy_deployment_group.alias["app/staging"]
}

moved {
  from = aws_codedeploy_deployment_group.alias["production"]
  to   = aws_codedeploy_deployment_group.alias["app/production"]
}
