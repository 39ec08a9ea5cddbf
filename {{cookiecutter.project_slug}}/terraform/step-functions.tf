resource "aws_cloudwatch_log_group" "state_machine" {
  # The /aws/vendedlogs/ prefix keeps Step Functions from growing the account's log resource policy.
  name              = local.names.log_groups.state_machine
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.pipeline.arn
}

resource "aws_iam_role" "state_machine" {
  name        = local.names.roles.state_machine
  description = "Runs the ${local.state_machine_name} state machine"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "states.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.state_machine_name}" }
      }
    }]
  })
  permissions_boundary = local.permissions_boundary_arn
}

resource "aws_iam_role_policy" "state_machine" {
  name = "invoke-pipeline-functions"
  role = aws_iam_role.state_machine.id
  policy = jsonencode({
    Version = "2012-10-17"
    # The release's outcome and provenance (NotifyRelease in state_machine.asl.json): the
    # sns:publish integration publishes with this role.
    Statement = concat(local.publish_to_topic_statements, [
      {
        Sid      = "InvokePipelineFunctions"
        Effect   = "Allow"
        Action   = "lambda:InvokeFunction"
        Resource = flatten([for function in aws_lambda_function.pipeline : [function.arn, "${function.arn}:*"]])
      },
      {
        # Step Functions configures log delivery with these; they have no resource-level permissions.
        Sid    = "DeliverExecutionLogs"
        Effect = "Allow"
        Action = [
          "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
          "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
        ]
        Resource = "*"
      },
      {
        Sid      = "XRayTraces"
        Effect   = "Allow"
        Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
        Resource = "*"
      },
    ])
  })
}

# Every timeout of a release (deployment polls, approval, the machine, release-wait) derived from the
# deployment strategies (staging's and production's) and the approval window, in one place.
module "release_budget" {
  source                      = "./release_budget"
  deployment_strategy         = var.deployment_strategy
  staging_deployment_strategy = var.staging_deployment_strategy
  manual_approval             = var.manual_approval
  approval_timeout_seconds    = var.approval_timeout_seconds
  task_timeouts               = { for name, function in local.all_pipeline_functions : name => function.timeout }
}

output "release_budget" {
  description = "The release's time budget: release-tooling release-wait follows a release for release_wait_seconds."
  value       = module.release_budget
}

locals {
  # Every placeholder is always passed (the approval one empty when approval is off) so templatefile
  # never fails on a variable the chosen ASL does not use.
  release_asl = jsondecode(templatefile("${path.module}/../state_machine.asl.json", {
    validate_artifact_function_arn = aws_lambda_function.pipeline["validate_artifact"].arn
    deploy_function_arn            = aws_lambda_function.pipeline["deploy"].arn
    deployment_status_function_arn = aws_lambda_function.pipeline["deployment_status"].arn
    smoke_tests_function_arn       = aws_lambda_function.pipeline["smoke_tests"].arn
    rollback_function_arn          = aws_lambda_function.pipeline["rollback"].arn
    approval_notifier_function_arn = var.manual_approval ? aws_lambda_function.pipeline["approval_notifier"].arn : ""
    release_events_topic_arn       = aws_sns_topic.release_events.arn
  }))

  # The time budget (release_budget/) replaces the sample numbers the ASL file carries, so the
  # file stays valid JSON for every tool that reads it: the machine's TimeoutSeconds, each
  # deployment check's timeout_seconds and the approval's TimeoutSeconds. Single-entry for
  # expressions, because the states differ in shape and the approval state may not exist.
  release_states = merge(
    local.release_asl.States,
    {
      for name, state in local.release_asl.States : name => merge(state, {
        Parameters = merge(state.Parameters, {
          Payload = merge(state.Parameters.Payload, {
            timeout_seconds = module.release_budget.deployment_timeout_seconds["staging"]
          })
        })
      }) if name == "CheckStaging"
    },
    {
      for name, state in local.release_asl.States : name => merge(state, {
        Parameters = merge(state.Parameters, {
          Payload = merge(state.Parameters.Payload, {
            timeout_seconds = module.release_budget.deployment_timeout_seconds["production"]
          })
        })
      }) if name == "CheckProduction"
    },
    {
      for name, state in local.release_asl.States : name => merge(state, {
        TimeoutSeconds = module.release_budget.approval_timeout_seconds
      }) if name == "ApproveProduction"
    },
  )

  release_definition = merge(local.release_asl, {
    TimeoutSeconds = module.release_budget.state_machine_timeout_seconds
    States         = local.release_states
  })
}

resource "aws_sfn_state_machine" "release" {
  #checkov:skip=CKV_AWS_285:Execution data is left out of the logs on purpose: it carries the approval task token and release inputs; failures are logged at ERROR and every input and output stays in the execution history.
  name     = local.state_machine_name
  type     = "STANDARD"
  role_arn = aws_iam_role.state_machine.arn

  definition = jsonencode(local.release_definition)

  logging_configuration {
    log_destination = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    # ERROR without execution data: ALL with execution data would write every state's input and
    # output, including the approval task token, to CloudWatch Logs. ERROR logs failed, timed-out and
    # aborted executions and failed states, without their data ("Log levels for Step Functions
    # execution events", Step Functions Developer Guide). Inputs remain in the execution history.
    include_execution_data = false
    level                  = "ERROR"
  }

  tracing_configuration {
    enabled = true
  }

  # The role must be able to invoke, log and notify before the first execution.
  depends_on = [aws_iam_role_policy.state_machine]
}
