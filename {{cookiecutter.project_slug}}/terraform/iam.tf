# Every role is its own least-privilege identity: one per Lambda function, plus CodeDeploy, Step
# Functions, CodePipeline and the EventBridge rule that starts the pipeline. No action wildcards;
# resources are the exact ARNs, except the few actions AWS only authorizes on "*" (noted inline).

locals {
  # Every app function of the release (terraform/names app_function_keys), with its versions and aliases.
  app_function_arns           = [for function in aws_lambda_function.app : function.arn]
  app_function_and_qualifiers = concat(local.app_function_arns, [for arn in local.app_function_arns : "${arn}:*"])
  deployment_group_arns       = values(local.arns.deployment_groups)
  deployment_config_arns      = [for config in distinct(values(local.alias_deployment_configs)) : "arn:${local.partition}:codedeploy:${local.region}:${local.account_id}:deploymentconfig:${config}"]

  # Publishing to the release-events topic, which is SSE-KMS with the pipeline key: a publisher
  # needs kms:GenerateDataKey* and kms:Decrypt on it (Amazon SNS Developer Guide, "Key
  # management", permissions for publishers to encrypted topics). The key policy delegates to IAM
  # (AccountIamPolicies). Used by the approval notifier and the state machine's NotifyRelease.
  publish_to_topic_statements = [
    {
      Sid      = "PublishToReleaseTopic"
      Effect   = "Allow"
      Action   = "sns:Publish"
      Resource = aws_sns_topic.release_events.arn
    },
    {
      Sid      = "EncryptForTopic"
      Effect   = "Allow"
      Action   = ["kms:GenerateDataKey", "kms:Decrypt"]
      Resource = aws_kms_key.pipeline.arn
    },
  ]

  xray_statement = {
    # X-Ray trace submission has no resource-level permissions.
    Sid      = "XRayTraces"
    Effect   = "Allow"
    Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    Resource = "*"
  }

  read_release_statements = [
    {
      Sid      = "ReadReleaseArtifacts"
      Effect   = "Allow"
      Action   = ["s3:GetObject", "s3:GetObjectVersion"]
      Resource = "${aws_s3_bucket.artifacts.arn}/${local.releases_prefix}*"
    },
    {
      # Lets S3 answer 404 (not 403) for a missing release, so the error names the real problem.
      Sid       = "ListReleases"
      Effect    = "Allow"
      Action    = "s3:ListBucket"
      Resource  = aws_s3_bucket.artifacts.arn
      Condition = { StringLike = { "s3:prefix" = "${local.releases_prefix}*" } }
    },
  ]

  track_deployments_statement = {
    Sid      = "TrackDeployments"
    Effect   = "Allow"
    Action   = ["codedeploy:GetDeployment", "codedeploy:ListDeployments"]
    Resource = local.deployment_group_arns
  }

  # StopDeployment has no resource type in the Service Authorization Reference (AWS CodeDeploy):
  # granted on deployment group ARNs it is never allowed, so the rollback could not stop one.
  stop_deployments_statement = {
    Sid      = "StopDeployments"
    Effect   = "Allow"
    Action   = "codedeploy:StopDeployment"
    Resource = "*"
  }

  # Statements each pipeline function needs beyond logging, tracing and its environment key.
  pipeline_function_statements = {
    validate_artifact = local.read_release_statements

    deploy = concat(local.read_release_statements, [
      {
        Sid    = "PublishAndShiftAppVersions"
        Effect = "Allow"
        Action = [
          "lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode",
          "lambda:PublishVersion", "lambda:ListVersionsByFunction", "lambda:GetAlias", "lambda:UpdateAlias",
        ]
        Resource = local.app_function_and_qualifiers
      },
      {
        Sid      = "CreateAndTrackDeployments"
        Effect   = "Allow"
        Action   = ["codedeploy:CreateDeployment", "codedeploy:GetDeployment", "codedeploy:ListDeployments"]
        Resource = local.deployment_group_arns
      },
      local.stop_deployments_statement,
      {
        Sid      = "ReadDeploymentConfig"
        Effect   = "Allow"
        Action   = "codedeploy:GetDeploymentConfig"
        Resource = local.deployment_config_arns
      },
      {
        # CreateDeployment registers the AppSpec as an application revision.
        Sid      = "RegisterRevisions"
        Effect   = "Allow"
        Action   = ["codedeploy:GetApplication", "codedeploy:GetApplicationRevision", "codedeploy:RegisterApplicationRevision"]
        Resource = local.codedeploy_app_arn
      },
    ])

    deployment_status = [
      local.track_deployments_statement,
      {
        Sid      = "ReadAliases"
        Effect   = "Allow"
        Action   = ["lambda:GetAlias", "lambda:GetFunctionConfiguration"]
        Resource = local.app_function_and_qualifiers
      },
    ]

    smoke_tests = [
      {
        Sid      = "InvokeStagingAliases"
        Effect   = "Allow"
        Action   = "lambda:InvokeFunction"
        Resource = [for arn in local.app_function_arns : "${arn}:staging"]
      },
      {
        # The checks a release runs are the ones each app function's zip packages
        # (smoke_checks.json): GetObject needs s3:GetObject on the object ("GetObject", Amazon S3
        # API Reference, Permissions). The release's app function zips only (any commit), not its
        # manifest or anything else in the bucket. Without s3:ListBucket a missing object is
        # answered 403 AccessDenied, not 404; the step runs after validate_artifact found the
        # objects, so it is not granted.
        Sid      = "ReadReleaseAppArtifacts"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = [for key in local.app_function_keys : "${aws_s3_bucket.artifacts.arn}/${local.releases_prefix}*/${key}.zip"]
      },
    ]

    rollback = [
      {
        Sid      = "TrackDeploymentsToStop"
        Effect   = "Allow"
        Action   = ["codedeploy:GetDeployment", "codedeploy:ListDeployments"]
        Resource = local.deployment_group_arns
      },
      local.stop_deployments_statement,
      {
        Sid      = "PointAliasesBack"
        Effect   = "Allow"
        Action   = ["lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetFunctionConfiguration"]
        Resource = local.app_function_and_qualifiers
      },
    ]

    approval_notifier = local.publish_to_topic_statements
  }
}

# ---------------------------------------------------------------- Lambda functions

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "pipeline_function" {
  for_each = local.pipeline_functions

  name                 = local.names.roles[each.key]
  description          = "Execution role of ${local.pipeline_function_names[each.key]}"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  permissions_boundary = local.permissions_boundary_arn
}

resource "aws_iam_role_policy" "pipeline_function" {
  for_each = local.pipeline_functions

  name = "least-privilege"
  role = aws_iam_role.pipeline_function[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          Sid      = "WriteOwnLogs"
          Effect   = "Allow"
          Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
          Resource = "${aws_cloudwatch_log_group.function[each.key].arn}:*"
        },
        {
          # Environment variables (and release objects) are encrypted with the pipeline key.
          Sid      = "DecryptWithPipelineKey"
          Effect   = "Allow"
          Action   = "kms:Decrypt"
          Resource = aws_kms_key.pipeline.arn
        },
        local.xray_statement,
      ],
      local.pipeline_function_statements[each.key],
    )
  })
}

resource "aws_iam_role" "app" {
  for_each = local.app_functions

  name                 = local.names.roles[each.key]
  description          = "Execution role of ${each.value}"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  permissions_boundary = local.permissions_boundary_arn
}

resource "aws_iam_role_policy" "app" {
  for_each = local.app_functions

  name = "least-privilege"
  role = aws_iam_role.app[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.function[each.key].arn}:*"
      },
      {
        Sid      = "DecryptEnvironment"
        Effect   = "Allow"
        Action   = "kms:Decrypt"
        Resource = aws_kms_key.pipeline.arn
      },
      local.xray_statement,
    ]
  })
}

moved {
  from = aws_iam_role.app
  to   = aws_iam_role.app["app"]
}

moved {
  from = aws_iam_role_policy.app
  to   = aws_iam_role_policy.app["app"]
}

# ---------------------------------------------------------------- CodeDeploy

# The trust policy AWS documents for the CodeDeploy service role ("Step 2: Create a service role for
# CodeDeploy", CodeDeploy User Guide) has no aws:SourceAccount condition; none is added.
resource "aws_iam_role" "codedeploy" {
  name        = local.names.roles.codedeploy
  description = "CodeDeploy shifts traffic between versions of ${join(", ", values(local.app_functions))}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "codedeploy.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  permissions_boundary = local.permissions_boundary_arn
}

# Scoped equivalent of AWSCodeDeployRoleForLambdaLimited (which allows lambda:UpdateAlias on every
# function in the account): this app's functions' aliases and their alarms only. No hook functions are used.
resource "aws_iam_role_policy" "codedeploy" {
  name = "shift-app-aliases"
  role = aws_iam_role.codedeploy.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ShiftAppAliases"
        Effect   = "Allow"
        Action   = ["lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetProvisionedConcurrencyConfig"]
        Resource = local.app_function_and_qualifiers
      },
      {
        Sid      = "ReadRollbackAlarms"
        Effect   = "Allow"
        Action   = "cloudwatch:DescribeAlarms"
        Resource = [for alarm in aws_cloudwatch_metric_alarm.app_errors : alarm.arn]
      },
    ]
  })
}
