# GitHub Actions reach AWS through OIDC only (no stored keys), as two roles:
# - <project>-github-plan: pull requests of this repository; reads the stack, writes only the state lock.
# - <project>-github-apply: jobs running in the repository's "production" environment (protect it with
#   required reviewers / branch rules in GitHub); manages the stack's resources by name prefix.
# Neither can touch the other, itself, the bootstrap state or the permissions boundary.

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.arn.oidc_github_host}"
  client_id_list = ["sts.amazonaws.com"]
  # AWS validates GitHub's certificate against its own trust store; the provider still requires a
  # value, and this is GitHub's published intermediate thumbprint.
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1"]
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 0 : 1
  url   = "https://${local.arn.oidc_github_host}"
}

locals {
  oidc_provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn

  # OIDC subjects each role trusts. The read-only plan role also serves the scheduled drift check,
  # which runs on main; only the production environment (with its reviewers) may apply.
  github_subjects = {
    plan = [
      "repo:${var.github_repository}:pull_request",
      "repo:${var.github_repository}:ref:refs/heads/main",
    ]
    apply = ["repo:${var.github_repository}:environment:production"]
  }

  state_object = "${aws_s3_bucket.state.arn}/${var.state_key}"
  state_lock   = "${aws_s3_bucket.state.arn}/${var.state_key}.tflock"

  # Terraform reads every resource of the stack on refresh: bucket configuration, functions, roles,
  # logs, keys, topic, rules, state machine, pipeline, CodeDeploy and alarms, all by name prefix.
  read_stack_statements = [
    {
      Sid      = "ReadArtifactBucketConfiguration"
      Effect   = "Allow"
      Action   = ["s3:GetBucket*", "s3:GetAccelerateConfiguration", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration", "s3:GetReplicationConfiguration", "s3:ListBucket"]
      Resource = local.arn.artifact_bucket
    },
    {
      Sid      = "ReadFunctions"
      Effect   = "Allow"
      Action   = ["lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:GetFunctionConcurrency", "lambda:GetFunctionCodeSigningConfig", "lambda:GetRuntimeManagementConfig", "lambda:GetFunctionRecursionConfig", "lambda:GetAlias", "lambda:GetPolicy", "lambda:ListVersionsByFunction", "lambda:ListAliases", "lambda:ListTags"]
      Resource = [local.arn.functions, "${local.arn.functions}:*"]
    },
    {
      Sid      = "ReadRoles"
      Effect   = "Allow"
      Action   = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListRoleTags"]
      Resource = local.arn.roles
    },
    {
      Sid      = "ReadLogGroups"
      Effect   = "Allow"
      Action   = ["logs:ListTagsForResource", "logs:ListTagsLogGroup"]
      Resource = [local.arn.lambda_logs, "${local.arn.lambda_logs}:*", local.arn.states_logs, "${local.arn.states_logs}:*"]
    },
    {
      Sid       = "ReadProjectKeys"
      Effect    = "Allow"
      Action    = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
      Resource  = local.arn.kms_keys
      Condition = local.project_tag_condition
    },
    {
      Sid      = "ReadTopic"
      Effect   = "Allow"
      Action   = ["sns:GetTopicAttributes", "sns:GetSubscriptionAttributes", "sns:ListSubscriptionsByTopic", "sns:ListTagsForResource"]
      Resource = [local.arn.topics, "${local.arn.topics}:*"]
    },
    {
      Sid      = "ReadRules"
      Effect   = "Allow"
      Action   = ["events:DescribeRule", "events:ListTargetsByRule", "events:ListTagsForResource"]
      Resource = local.arn.rules
    },
    {
      Sid      = "ReadStateMachine"
      Effect   = "Allow"
      Action   = ["states:DescribeStateMachine", "states:ListStateMachineVersions", "states:ListTagsForResource"]
      Resource = local.arn.state_machines
    },
    {
      Sid      = "ReadPipeline"
      Effect   = "Allow"
      Action   = ["codepipeline:GetPipeline", "codepipeline:ListTagsForResource"]
      Resource = local.arn.pipelines
    },
    {
      Sid      = "ReadCodeDeploy"
      Effect   = "Allow"
      Action   = ["codedeploy:GetApplication", "codedeploy:GetDeploymentGroup", "codedeploy:ListDeploymentGroups", "codedeploy:ListTagsForResource"]
      Resource = [local.arn.cd_applications, "${local.arn.cd_groups}/*"]
    },
    {
      Sid      = "ReadDeploymentConfigs"
      Effect   = "Allow"
      Action   = "codedeploy:GetDeploymentConfig"
      Resource = local.arn.cd_configs
    },
    {
      Sid      = "ReadAlarms"
      Effect   = "Allow"
      Action   = ["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"]
      Resource = local.arn.alarms
    },
    {
      # Calls IAM only authorizes on "*". They return names and metadata, never data; the provider
      # validates the state machine definition (ValidateStateMachineDefinition) while planning.
      Sid      = "CallsWithoutResourceScope"
      Effect   = "Allow"
      Action   = ["logs:DescribeLogGroups", "kms:ListAliases", "states:ValidateStateMachineDefinition"]
      Resource = "*"
    },
  ]
}

data "aws_iam_policy_document" "github_trust" {
  for_each = local.github_subjects

  statement {
    sid     = "GitHubActions${title(each.key)}"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.arn.oidc_github_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Exact subjects: no wildcard, so forks, other branches and other environments are refused.
    condition {
      test     = "StringEquals"
      variable = "${local.arn.oidc_github_host}:sub"
      values   = each.value
    }
  }
}

# ---------------------------------------------------------------- plan role

resource "aws_iam_role" "plan" {
  name                 = "${var.project}-github-plan"
  description          = "terraform plan for pull requests of ${var.github_repository}"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["plan"].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "plan" {
  name = "plan-main-stack"
  role = aws_iam_role.plan.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(local.read_stack_statements, [
      {
        Sid      = "ReadState"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = local.state_object
      },
      {
        Sid       = "ListStateKey"
        Effect    = "Allow"
        Action    = "s3:ListBucket"
        Resource  = aws_s3_bucket.state.arn
        Condition = { StringLike = { "s3:prefix" = "${var.state_key}*" } }
      },
      {
        # plan takes the S3 lock (use_lockfile) like any other state operation.
        Sid      = "WriteStateLock"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = local.state_lock
      },
      {
        Sid      = "UseStateKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
        Resource = aws_kms_key.state.arn
      },
    ])
  })
}

# ---------------------------------------------------------------- apply role

resource "aws_iam_role" "apply" {
  name                 = "${var.project}-github-apply"
  description          = "terraform apply of the main stack from ${var.github_repository}'s production environment"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["apply"].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "apply" {
  name = "apply-main-stack"
  role = aws_iam_role.apply.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(local.read_stack_statements, [
      {
        Sid      = "ReadWriteState"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = [local.state_object, local.state_lock]
      },
      {
        Sid       = "ListStateKey"
        Effect    = "Allow"
        Action    = "s3:ListBucket"
        Resource  = aws_s3_bucket.state.arn
        Condition = { StringLike = { "s3:prefix" = "${var.state_key}*" } }
      },
      {
        Sid      = "UseStateKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
        Resource = aws_kms_key.state.arn
      },
      {
        # Bucket-level configuration only; the role reads and writes no release objects.
        Sid      = "ManageArtifactBucket"
        Effect   = "Allow"
        Action   = ["s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucket*", "s3:DeleteBucket*", "s3:PutEncryptionConfiguration", "s3:PutLifecycleConfiguration", "s3:PutAccelerateConfiguration", "s3:PutReplicationConfiguration"]
        Resource = local.arn.artifact_bucket
      },
      {
        Sid    = "ManageFunctions"
        Effect = "Allow"
        Action = [
          "lambda:CreateFunction", "lambda:DeleteFunction", "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
          "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency", "lambda:CreateAlias", "lambda:UpdateAlias",
          "lambda:DeleteAlias", "lambda:TagResource", "lambda:UntagResource",
        ]
        Resource = [local.arn.functions, "${local.arn.functions}:*"]
      },
      {
        # Roles of the stack may only be created or changed while they carry the workload boundary,
        # so the apply role cannot mint a role more powerful than the stack needs.
        Sid       = "ManageBoundedRoles"
        Effect    = "Allow"
        Action    = ["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy"]
        Resource  = local.arn.roles
        Condition = { StringEquals = { "iam:PermissionsBoundary" = local.arn.boundary } }
      },
      {
        Sid      = "ManageRoleMetadata"
        Effect   = "Allow"
        Action   = ["iam:DeleteRole", "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole", "iam:ListInstanceProfilesForRole"]
        Resource = local.arn.roles
      },
      {
        Sid       = "PassRolesToStackServices"
        Effect    = "Allow"
        Action    = "iam:PassRole"
        Resource  = local.arn.roles
        Condition = { StringEquals = { "iam:PassedToService" = ["lambda.amazonaws.com", "states.amazonaws.com", "codepipeline.amazonaws.com", "codedeploy.amazonaws.com", "events.amazonaws.com"] } }
      },
      {
        # The prefix above also matches the CI roles: never let them be edited (privilege escalation).
        Sid      = "NeverTouchCiRolesOrBoundary"
        Effect   = "Deny"
        Action   = ["iam:*"]
        Resource = [local.arn.github_roles, local.arn.boundary]
      },
      {
        Sid      = "NeverDropBoundary"
        Effect   = "Deny"
        Action   = "iam:DeleteRolePermissionsBoundary"
        Resource = "*"
      },
      {
        Sid       = "CreateProjectKeys"
        Effect    = "Allow"
        Action    = ["kms:CreateKey", "kms:TagResource"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:RequestTag/Project" = var.project } }
      },
      {
        Sid    = "ManageProjectKeys"
        Effect = "Allow"
        Action = [
          "kms:EnableKeyRotation", "kms:PutKeyPolicy", "kms:UpdateKeyDescription", "kms:ScheduleKeyDeletion",
          "kms:TagResource", "kms:UntagResource", "kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias",
          "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant",
        ]
        Resource  = local.arn.kms_keys
        Condition = local.project_tag_condition
      },
      {
        Sid      = "ManageProjectKeyAliases"
        Effect   = "Allow"
        Action   = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
        Resource = local.arn.kms_aliases
      },
      {
        Sid      = "ManageLogGroups"
        Effect   = "Allow"
        Action   = ["logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy", "logs:AssociateKmsKey", "logs:DisassociateKmsKey", "logs:TagResource", "logs:UntagResource", "logs:TagLogGroup", "logs:UntagLogGroup"]
        Resource = [local.arn.lambda_logs, "${local.arn.lambda_logs}:*", local.arn.states_logs, "${local.arn.states_logs}:*"]
      },
      {
        Sid      = "ConfigureStateMachineLogging"
        Effect   = "Allow"
        Action   = ["logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies"]
        Resource = "*"
      },
      {
        Sid      = "ManageTopic"
        Effect   = "Allow"
        Action   = ["sns:CreateTopic", "sns:DeleteTopic", "sns:SetTopicAttributes", "sns:Subscribe", "sns:Unsubscribe", "sns:SetSubscriptionAttributes", "sns:TagResource", "sns:UntagResource"]
        Resource = [local.arn.topics, "${local.arn.topics}:*"]
      },
      {
        Sid      = "ManageRules"
        Effect   = "Allow"
        Action   = ["events:PutRule", "events:DeleteRule", "events:EnableRule", "events:DisableRule", "events:PutTargets", "events:RemoveTargets", "events:TagResource", "events:UntagResource"]
        Resource = local.arn.rules
      },
      {
        Sid      = "ManageStateMachine"
        Effect   = "Allow"
        Action   = ["states:CreateStateMachine", "states:UpdateStateMachine", "states:DeleteStateMachine", "states:TagResource", "states:UntagResource"]
        Resource = local.arn.state_machines
      },
      {
        Sid      = "ManagePipeline"
        Effect   = "Allow"
        Action   = ["codepipeline:CreatePipeline", "codepipeline:UpdatePipeline", "codepipeline:DeletePipeline", "codepipeline:TagResource", "codepipeline:UntagResource"]
        Resource = local.arn.pipelines
      },
      {
        Sid      = "ManageCodeDeploy"
        Effect   = "Allow"
        Action   = ["codedeploy:CreateApplication", "codedeploy:UpdateApplication", "codedeploy:DeleteApplication", "codedeploy:CreateDeploymentGroup", "codedeploy:UpdateDeploymentGroup", "codedeploy:DeleteDeploymentGroup", "codedeploy:TagResource", "codedeploy:UntagResource"]
        Resource = [local.arn.cd_applications, "${local.arn.cd_groups}/*"]
      },
      {
        Sid      = "ManageAlarms"
        Effect   = "Allow"
        Action   = ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource", "cloudwatch:UntagResource"]
        Resource = local.arn.alarms
      },
    ])
  })
}

# ---------------------------------------------------------------- permissions boundary

# The ceiling of every role the main stack creates (its variable permissions_boundary_name names this
# policy). Effective permissions are the intersection with each role's own least-privilege policy, so
# this only has to be tight enough that no role of the stack can act outside the project.
resource "aws_iam_policy" "workload_boundary" {
  name        = "${var.project}-workload-boundary"
  description = "Permissions boundary of the roles of the ${var.project} release pipeline"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "WriteProjectLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${local.arn.lambda_logs}:*", "${local.arn.states_logs}:*"]
      },
      {
        Sid    = "TracesAndLogDelivery"
        Effect = "Allow"
        Action = [
          "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
          "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
          "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
        ]
        Resource = "*"
      },
      {
        Sid      = "ArtifactBucket"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:ListBucket", "s3:GetBucketVersioning", "s3:GetBucketLocation"]
        Resource = [local.arn.artifact_bucket, "${local.arn.artifact_bucket}/*"]
      },
      {
        Sid       = "ProjectKeys"
        Effect    = "Allow"
        Action    = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
        Resource  = local.arn.kms_keys
        Condition = local.project_tag_condition
      },
      {
        Sid    = "ProjectFunctions"
        Effect = "Allow"
        Action = [
          "lambda:InvokeFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode",
          "lambda:PublishVersion", "lambda:ListVersionsByFunction", "lambda:GetAlias", "lambda:UpdateAlias",
          "lambda:GetProvisionedConcurrencyConfig",
        ]
        Resource = [local.arn.functions, "${local.arn.functions}:*"]
      },
      {
        Sid    = "ProjectDeployments"
        Effect = "Allow"
        Action = [
          "codedeploy:CreateDeployment", "codedeploy:GetDeployment", "codedeploy:ListDeployments", "codedeploy:StopDeployment",
          "codedeploy:GetDeploymentConfig", "codedeploy:GetApplication", "codedeploy:GetApplicationRevision",
          "codedeploy:RegisterApplicationRevision",
        ]
        Resource = [local.arn.cd_applications, "${local.arn.cd_groups}/*", local.arn.cd_configs]
      },
      {
        Sid    = "ProjectReleases"
        Effect = "Allow"
        # ListExecutions/GetExecutionHistory: make release-wait follows this commit's execution.
        Action = [
          "states:StartExecution", "states:DescribeStateMachine", "states:DescribeExecution", "states:StopExecution",
          "states:ListExecutions", "states:GetExecutionHistory",
        ]
        Resource = [local.arn.state_machines, "${local.arn.executions}:*"]
      },
      {
        Sid = "ProjectPipeline"
        # The listing calls only feed release-wait's link to the pipeline run.
        Effect   = "Allow"
        Action   = ["codepipeline:StartPipelineExecution", "codepipeline:ListPipelineExecutions", "codepipeline:ListActionExecutions"]
        Resource = local.arn.pipelines
      },
      {
        Sid      = "ProjectTopic"
        Effect   = "Allow"
        Action   = "sns:Publish"
        Resource = local.arn.topics
      },
      {
        Sid      = "ProjectAlarms"
        Effect   = "Allow"
        Action   = "cloudwatch:DescribeAlarms"
        Resource = local.arn.alarms
      },
    ]
  })
}
