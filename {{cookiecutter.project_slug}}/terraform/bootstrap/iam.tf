# GitHub Actions reach AWS through OIDC only (no stored keys), as two roles:
# - <project>-github-plan: pull requests of this repository and the scheduled drift check; reads the
#   stack and its state (plans run with -lock=false, so it writes nothing, not even the lock).
# - <project>-github-apply: jobs running in the repository's "production" environment (protect it with
#   required reviewers / branch rules in GitHub); manages the stack's resources by their exact ARNs
#   (terraform/names), uploads releases and follows them.
# - <project>-github-approve (manual_approval only): the Approve release workflow, in the
#   repository's "release-approval" environment (its required reviewers are the approvers); reads a
#   waiting execution's history for the task token and answers it. Nothing else.
# None can touch another, itself, the bootstrap state or the permissions boundary.

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.oidc_github_host}"
  client_id_list = ["sts.amazonaws.com"]
  # AWS validates GitHub's certificate against its own trust store; the provider still requires a
  # value, and this is GitHub's published intermediate thumbprint.
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1"]
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 0 : 1
  url   = "https://${local.oidc_github_host}"
}

locals {
  oidc_provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn

  # OIDC subjects each role trusts. The read-only plan role also serves the scheduled drift check,
  # which runs on main; only the production environment (with its reviewers) may apply.
  # By name (the default) or by the immutable owner and repository ids, once the repository's OIDC
  # subject template includes them (GitHub docs, "Customizing the subject claims for an
  # organization or repository"): a renamed or deleted owner's name can be taken by someone else.
  github_subject_prefix = var.github_oidc_subject_ids == null ? "repo:${var.github_repository}" : "repository_owner_id:${var.github_oidc_subject_ids.owner_id}:repository_id:${var.github_oidc_subject_ids.repository_id}"
  github_subjects = {
    plan = [
      "${local.github_subject_prefix}:pull_request",
      "${local.github_subject_prefix}:ref:refs/heads/main",
    ]
    apply = ["${local.github_subject_prefix}:environment:production"]
    # A job that names an environment gets the subject repo:OWNER/REPO:environment:NAME (GitHub docs,
    # "OpenID Connect reference", example subject claims), whatever branch it runs from.
    approve = ["${local.github_subject_prefix}:environment:release-approval"]
  }
  merge_queue_subject = "${local.github_subject_prefix}:ref:refs/heads/gh-readonly-queue/main/*"

  state_bucket_arn = "arn:${local.partition}:s3:::${local.state_bucket_name}"
  state_object     = "${local.state_bucket_arn}/${var.state_key}"
  state_lock       = "${local.state_bucket_arn}/${var.state_key}.tflock"

  # The state key works for S3 objects of the state bucket only. The bucket uses an S3 Bucket Key, so
  # the encryption context S3 sends is the bucket ARN (Amazon S3 User Guide, "Reducing the cost of
  # SSE-KMS with Amazon S3 Bucket Keys"; AWS KMS Developer Guide, "kms:ViaService").
  state_key_only_through_state_bucket = {
    StringEquals = {
      "kms:ViaService"                   = "s3.${local.region}.amazonaws.com"
      "kms:EncryptionContext:aws:s3:arn" = local.state_bucket_arn
    }
  }

  release_objects = ["${local.arns.artifact_bucket}/releases/*", "${local.arns.artifact_bucket}/pipeline/source.zip"]

  # Terraform reads every resource of the stack on refresh: bucket configuration, functions, roles,
  # logs, topic, rules, state machine, pipeline, CodeDeploy and alarms, all by exact ARN. The pipeline
  # key is read through its key policy (terraform/artifacts.tf), which names these roles.
  read_stack_statements = [
    {
      Sid      = "ReadArtifactBucketConfiguration"
      Effect   = "Allow"
      Action   = ["s3:GetBucket*", "s3:GetAccelerateConfiguration", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration", "s3:GetReplicationConfiguration", "s3:ListBucket"]
      Resource = local.arns.artifact_bucket
    },
    {
      Sid      = "ReadFunctions"
      Effect   = "Allow"
      Action   = ["lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:GetFunctionConcurrency", "lambda:GetFunctionCodeSigningConfig", "lambda:GetRuntimeManagementConfig", "lambda:GetFunctionRecursionConfig", "lambda:GetAlias", "lambda:GetPolicy", "lambda:ListVersionsByFunction", "lambda:ListAliases", "lambda:ListTags"]
      Resource = local.function_and_qualifiers
    },
    {
      Sid      = "ReadRoles"
      Effect   = "Allow"
      Action   = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListRoleTags"]
      Resource = local.stack_role_arns
    },
    {
      Sid      = "ReadLogGroups"
      Effect   = "Allow"
      Action   = ["logs:ListTagsForResource", "logs:ListTagsLogGroup"]
      Resource = local.log_group_and_streams
    },
    {
      Sid      = "ReadTopic"
      Effect   = "Allow"
      Action   = ["sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic", "sns:ListTagsForResource"]
      Resource = [local.arns.topic, "${local.arns.topic}:*"]
    },
    {
      Sid      = "ReadRules"
      Effect   = "Allow"
      Action   = ["events:DescribeRule", "events:ListTargetsByRule", "events:ListTagsForResource"]
      Resource = local.rule_arns
    },
    {
      Sid      = "ReadStateMachine"
      Effect   = "Allow"
      Action   = ["states:DescribeStateMachine", "states:ListStateMachineVersions", "states:ListTagsForResource"]
      Resource = local.arns.state_machine
    },
    {
      Sid      = "ReadPipeline"
      Effect   = "Allow"
      Action   = ["codepipeline:GetPipeline", "codepipeline:ListTagsForResource"]
      Resource = local.arns.pipeline
    },
    {
      Sid      = "ReadCodeDeploy"
      Effect   = "Allow"
      Action   = ["codedeploy:GetApplication", "codedeploy:GetDeploymentGroup", "codedeploy:ListDeploymentGroups", "codedeploy:ListTagsForResource"]
      Resource = local.codedeploy_arns
    },
    {
      Sid      = "ReadDeploymentConfigs"
      Effect   = "Allow"
      Action   = "codedeploy:GetDeploymentConfig"
      Resource = local.arns.deployment_configs
    },
    {
      Sid      = "ReadAlarms"
      Effect   = "Allow"
      Action   = ["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"]
      Resource = local.alarm_arns
    },
    {
      # Calls IAM only authorizes on "*". They return names and metadata, never data; the provider
      # validates the state machine definition (ValidateStateMachineDefinition) while planning.
      # sns:GetSubscriptionAttributes has no resource type in the Service Authorization Reference
      # (Amazon SNS), so it is granted on "*" or not at all (parliament RESOURCE_MISMATCH).
      Sid      = "CallsWithoutResourceScope"
      Effect   = "Allow"
      Action   = ["logs:DescribeLogGroups", "kms:ListAliases", "states:ValidateStateMachineDefinition", "sns:GetSubscriptionAttributes"]
      Resource = "*"
    },
  ]
}

data "aws_iam_policy_document" "github_trust" {
  for_each = { for role, subjects in local.github_subjects : role => subjects if role != "approve" || var.manual_approval }

  statement {
    sid     = "GitHubActions${title(each.key)}"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_github_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Exact subjects: no wildcard, so forks, other branches and other environments are refused.
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_github_host}:sub"
      values   = each.value
    }
  }

  # The merge queue's runs (merge_group) plan the merged result on a branch GitHub creates per
  # group, gh-readonly-queue/<base>/pr-<number>-<sha> ("Managing a merge queue", GitHub docs), so
  # their subject is repo:OWNER/REPO:ref:refs/heads/gh-readonly-queue/main/... ("OpenID Connect
  # reference": ref-based subjects). Only the read-only plan role trusts them, and only for main.
  dynamic "statement" {
    for_each = each.key == "plan" ? [local.merge_queue_subject] : []
    content {
      sid     = "GitHubActionsMergeQueue"
      actions = ["sts:AssumeRoleWithWebIdentity"]

      principals {
        type        = "Federated"
        identifiers = [local.oidc_provider_arn]
      }

      condition {
        test     = "StringEquals"
        variable = "${local.oidc_github_host}:aud"
        values   = ["sts.amazonaws.com"]
      }

      condition {
        test     = "StringLike"
        variable = "${local.oidc_github_host}:sub"
        values   = [statement.value]
      }
    }
  }
}

# ---------------------------------------------------------------- plan role

resource "aws_iam_role" "plan" {
  name                 = local.names.ci_roles.plan
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
        # Pull-request plans and drift checks run with -lock=false (Makefile plan/drift), so this
        # role only reads state: no lock file write, no upload anywhere.
        Sid      = "ReadState"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = local.state_object
      },
      {
        Sid       = "ListStateKey"
        Effect    = "Allow"
        Action    = "s3:ListBucket"
        Resource  = local.state_bucket_arn
        Condition = { StringLike = { "s3:prefix" = "${var.state_key}*" } }
      },
      {
        Sid       = "DecryptState"
        Effect    = "Allow"
        Action    = "kms:Decrypt"
        Resource  = aws_kms_key.state.arn
        Condition = local.state_key_only_through_state_bucket
      },
      {
        # The drift job's alias check (release-tooling alias-drift): the newest successful and
        # running releases, and the commit each names in its input. Aliases and versions are read
        # through ReadFunctions.
        Sid      = "ReadReleaseHistory"
        Effect   = "Allow"
        Action   = "states:ListExecutions"
        Resource = local.arns.state_machine
      },
      {
        Sid      = "ReadReleaseInputs"
        Effect   = "Allow"
        Action   = "states:DescribeExecution"
        Resource = "${local.arns.executions}:*"
      },
    ])
  })
}

# ---------------------------------------------------------------- approve role

resource "aws_iam_role" "approve" {
  count = var.manual_approval ? 1 : 0

  name                 = local.names.ci_roles.approve
  description          = "Approve or reject a release waiting for a person, from ${var.github_repository}'s release-approval environment"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["approve"].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "approve" {
  count = var.manual_approval ? 1 : 0

  name = "answer-release-approval"
  role = aws_iam_role.approve[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # release-tooling approve: DescribeExecution (is it running?) and GetExecutionHistory (the
        # waiting state's task token), on this state machine's executions only.
        Sid      = "ReadWaitingRelease"
        Effect   = "Allow"
        Action   = ["states:DescribeExecution", "states:GetExecutionHistory"]
        Resource = "${local.arns.executions}:*"
      },
      {
        # release-tooling approve finds <project>-release by name when given an execution name.
        # ListStateMachines has no resource type either (Service Authorization Reference).
        Sid      = "FindStateMachine"
        Effect   = "Allow"
        Action   = "states:ListStateMachines"
        Resource = "*"
      },
      {
        # SendTaskSuccess/SendTaskFailure have no resource type in the Service Authorization
        # Reference ("Actions, resources, and condition keys for AWS Step Functions"), so they take
        # "*"; a token is only readable through the history above.
        Sid      = "AnswerTaskToken"
        Effect   = "Allow"
        Action   = ["states:SendTaskSuccess", "states:SendTaskFailure"]
        Resource = "*"
      },
    ]
  })
}

# ---------------------------------------------------------------- apply role

resource "aws_iam_role" "apply" {
  name                 = local.names.ci_roles.apply
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
        Resource  = local.state_bucket_arn
        Condition = { StringLike = { "s3:prefix" = "${var.state_key}*" } }
      },
      {
        Sid       = "UseStateKeyForStateOnly"
        Effect    = "Allow"
        Action    = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
        Resource  = aws_kms_key.state.arn
        Condition = local.state_key_only_through_state_bucket
      },
      {
        # make release-upload (release-tooling package upload): HeadObject (s3:GetObject) then PutObject of
        # releases/<sha>/app.zip, manifest.json and pipeline/source.zip. SSE-KMS uses the pipeline
        # key, which its key policy grants this role through S3 (terraform/artifacts.tf).
        Sid      = "UploadReleases"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject"]
        Resource = local.release_objects
      },
      {
        # With ListBucket a missing object answers 404 instead of 403 (HeadObject before upload).
        Sid       = "ListReleases"
        Effect    = "Allow"
        Action    = "s3:ListBucket"
        Resource  = local.arns.artifact_bucket
        Condition = { StringLike = { "s3:prefix" = ["releases/*", "pipeline/*"] } }
      },
      {
        # make release-wait (release-tooling release-wait): finds this commit's execution and follows it.
        Sid      = "FindReleaseExecutions"
        Effect   = "Allow"
        Action   = "states:ListExecutions"
        Resource = local.arns.state_machine
      },
      {
        Sid      = "FollowReleaseExecutions"
        Effect   = "Allow"
        Action   = ["states:DescribeExecution", "states:GetExecutionHistory"]
        Resource = "${local.arns.executions}:*"
      },
      {
        # Links the execution to its pipeline run in the report.
        Sid      = "LinkPipelineRun"
        Effect   = "Allow"
        Action   = ["codepipeline:ListPipelineExecutions", "codepipeline:ListActionExecutions"]
        Resource = local.arns.pipeline
      },
      {
        # Bucket-level configuration only.
        Sid      = "ManageArtifactBucket"
        Effect   = "Allow"
        Action   = ["s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucket*", "s3:DeleteBucket*", "s3:PutEncryptionConfiguration", "s3:PutLifecycleConfiguration", "s3:PutAccelerateConfiguration", "s3:PutReplicationConfiguration"]
        Resource = local.arns.artifact_bucket
      },
      {
        Sid    = "ManageFunctions"
        Effect = "Allow"
        Action = [
          "lambda:CreateFunction", "lambda:DeleteFunction", "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
          "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency", "lambda:CreateAlias", "lambda:UpdateAlias",
          "lambda:DeleteAlias", "lambda:TagResource", "lambda:UntagResource",
        ]
        Resource = local.function_and_qualifiers
      },
      {
        # Roles of the stack may only be created or changed while they carry the workload boundary,
        # so the apply role cannot mint a role more powerful than the stack needs.
        Sid       = "ManageBoundedRoles"
        Effect    = "Allow"
        Action    = ["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy"]
        Resource  = local.stack_role_arns
        Condition = { StringEquals = { "iam:PermissionsBoundary" = aws_iam_policy.workload_boundary.arn } }
      },
      {
        Sid      = "ManageRoleMetadata"
        Effect   = "Allow"
        Action   = ["iam:DeleteRole", "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole", "iam:ListInstanceProfilesForRole"]
        Resource = local.stack_role_arns
      },
      {
        Sid       = "PassRolesToStackServices"
        Effect    = "Allow"
        Action    = "iam:PassRole"
        Resource  = local.stack_role_arns
        Condition = { StringEquals = { "iam:PassedToService" = ["lambda.amazonaws.com", "states.amazonaws.com", "codepipeline.amazonaws.com", "codedeploy.amazonaws.com", "events.amazonaws.com"] } }
      },
      {
        # Defence in depth: no Allow above names them, and this keeps it so if one ever does.
        Sid      = "NeverTouchCiRolesOrBoundary"
        Effect   = "Deny"
        Action   = ["iam:*"]
        Resource = concat(values(local.arns.ci_roles), [aws_iam_policy.workload_boundary.arn])
      },
      {
        Sid      = "NeverDropBoundary"
        Effect   = "Deny"
        Action   = "iam:DeleteRolePermissionsBoundary"
        Resource = "*"
      },
      {
        # CreateKey has no resource to scope, and creating a key takes over nothing: what the new key
        # allows is its own key policy (terraform/artifacts.tf), which names this role by exact ARN.
        # No statement here grants anything on keys by tag, so tagging cannot take a key over.
        # Conditions keep it to the one kind of key the stack creates (AWS KMS Developer Guide,
        # "kms:KeySpec", "kms:KeyUsage", "kms:KeyOrigin", "kms:BypassPolicyLockoutSafetyCheck").
        # ...IfExists: a parameter the request omits takes exactly these defaults (CreateKey, AWS
        # KMS API Reference), so an omitted one is the allowed value, never a way around it.
        Sid      = "CreatePipelineKey"
        Effect   = "Allow"
        Action   = "kms:CreateKey"
        Resource = "*"
        Condition = {
          StringEqualsIfExists = {
            "kms:KeySpec"   = "SYMMETRIC_DEFAULT"
            "kms:KeyUsage"  = "ENCRYPT_DECRYPT"
            "kms:KeyOrigin" = "AWS_KMS"
          }
          BoolIfExists = { "kms:BypassPolicyLockoutSafetyCheck" = "false" }
        }
      },
      {
        # CreateKey with tags (the provider's default_tags) needs kms:TagResource in an IAM policy,
        # as the key policy does not exist yet ("CreateKey", AWS KMS API Reference). Tags grant
        # nothing anywhere in this project, so this cannot be used to take over a key. The Null
        # condition keeps it to keys with no Project tag yet (a key being created): another
        # project's key, tagged with its own Project, cannot be retagged ("aws:ResourceTag", IAM
        # User Guide; KMS supports it for TagResource, "ABAC for AWS KMS").
        Sid      = "TagKeyAtCreation"
        Effect   = "Allow"
        Action   = "kms:TagResource"
        Resource = local.kms_keys_in_region
        Condition = {
          StringEquals = { "aws:RequestTag/Project" = var.project }
          Null         = { "aws:ResourceTag/Project" = "true" }
        }
      },
      {
        # The alias side of CreateAlias/UpdateAlias/DeleteAlias; the key side is in the key policy.
        Sid      = "ManagePipelineKeyAlias"
        Effect   = "Allow"
        Action   = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
        Resource = local.arns.kms_alias
      },
      {
        Sid      = "ManageLogGroups"
        Effect   = "Allow"
        Action   = ["logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy", "logs:AssociateKmsKey", "logs:DisassociateKmsKey", "logs:TagResource", "logs:UntagResource", "logs:TagLogGroup", "logs:UntagLogGroup"]
        Resource = local.log_group_and_streams
      },
      {
        # Step Functions log delivery is configured with calls IAM only authorizes on "*".
        Sid      = "ConfigureStateMachineLogging"
        Effect   = "Allow"
        Action   = ["logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies"]
        Resource = "*"
      },
      {
        Sid      = "ManageTopic"
        Effect   = "Allow"
        Action   = ["sns:CreateTopic", "sns:DeleteTopic", "sns:SetTopicAttributes", "sns:Subscribe", "sns:TagResource", "sns:UntagResource"]
        Resource = [local.arns.topic, "${local.arns.topic}:*"]
      },
      {
        # The release topic's email subscription. These subscription calls have no resource type
        # in the Service Authorization Reference (Amazon SNS): "*" is the only resource that works.
        Sid      = "ManageTopicSubscription"
        Effect   = "Allow"
        Action   = ["sns:Unsubscribe", "sns:SetSubscriptionAttributes"]
        Resource = "*"
      },
      {
        Sid      = "ManageRules"
        Effect   = "Allow"
        Action   = ["events:PutRule", "events:DeleteRule", "events:EnableRule", "events:DisableRule", "events:PutTargets", "events:RemoveTargets", "events:TagResource", "events:UntagResource"]
        Resource = local.rule_arns
      },
      {
        Sid      = "ManageStateMachine"
        Effect   = "Allow"
        Action   = ["states:CreateStateMachine", "states:UpdateStateMachine", "states:DeleteStateMachine", "states:TagResource", "states:UntagResource"]
        Resource = local.arns.state_machine
      },
      {
        Sid      = "ManagePipeline"
        Effect   = "Allow"
        Action   = ["codepipeline:CreatePipeline", "codepipeline:UpdatePipeline", "codepipeline:DeletePipeline", "codepipeline:TagResource", "codepipeline:UntagResource"]
        Resource = local.arns.pipeline
      },
      {
        Sid      = "ManageCodeDeploy"
        Effect   = "Allow"
        Action   = ["codedeploy:CreateApplication", "codedeploy:UpdateApplication", "codedeploy:DeleteApplication", "codedeploy:CreateDeploymentGroup", "codedeploy:UpdateDeploymentGroup", "codedeploy:DeleteDeploymentGroup", "codedeploy:TagResource", "codedeploy:UntagResource"]
        Resource = local.codedeploy_arns
      },
      {
        Sid      = "ManageAlarms"
        Effect   = "Allow"
        Action   = ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource", "cloudwatch:UntagResource"]
        Resource = local.alarm_arns
      },
    ])
  })
}

# ---------------------------------------------------------------- permissions boundary

# The ceiling of every role the main stack creates (its variable permissions_boundary_name names this
# policy). Effective permissions are the intersection with each role's own least-privilege policy, so
# this only has to be tight enough that no role of the stack can act outside the project.
resource "aws_iam_policy" "workload_boundary" {
  name        = local.names.boundary
  description = "Permissions boundary of the roles of the ${var.project} release pipeline"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "WriteProjectLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = [for arn in local.log_group_arns : "${arn}:*"]
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
        Sid    = "ArtifactBucket"
        Effect = "Allow"
        # GetBucketAcl/PutObjectAcl: CodePipeline's documented minimum for an S3 artifact store.
        Action   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:PutObjectAcl", "s3:ListBucket", "s3:GetBucketVersioning", "s3:GetBucketAcl", "s3:GetBucketLocation"]
        Resource = [local.arns.artifact_bucket, "${local.arns.artifact_bucket}/*"]
      },
      {
        Sid    = "ProjectKeys"
        Effect = "Allow"
        Action = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
        # The pipeline key's ARN is only known once the main stack creates it, and a tag condition
        # would let whoever may tag a key widen this ceiling. Instead: any key, but only through the
        # services this project's roles use it with; those services then apply the boundary's own
        # bucket, function and topic scoping (AWS KMS Developer Guide, "kms:ViaService").
        Resource  = local.kms_keys_in_region
        Condition = { StringEquals = { "kms:ViaService" = ["s3.${local.region}.amazonaws.com", "lambda.${local.region}.amazonaws.com", "sns.${local.region}.amazonaws.com"] } }
      },
      {
        Sid    = "ProjectFunctions"
        Effect = "Allow"
        Action = [
          "lambda:InvokeFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode",
          "lambda:PublishVersion", "lambda:ListVersionsByFunction", "lambda:GetAlias", "lambda:UpdateAlias",
          "lambda:GetProvisionedConcurrencyConfig",
        ]
        Resource = local.function_and_qualifiers
      },
      {
        Sid    = "ProjectDeployments"
        Effect = "Allow"
        Action = [
          "codedeploy:CreateDeployment", "codedeploy:GetDeployment", "codedeploy:ListDeployments",
          "codedeploy:GetDeploymentConfig", "codedeploy:GetApplication", "codedeploy:GetApplicationRevision",
          "codedeploy:RegisterApplicationRevision",
        ]
        Resource = concat(local.codedeploy_arns, [local.arns.deployment_configs])
      },
      {
        # StopDeployment has no resource type (Service Authorization Reference, AWS CodeDeploy):
        # granted on a deployment group ARN it is never allowed.
        Sid      = "StopProjectDeployments"
        Effect   = "Allow"
        Action   = "codedeploy:StopDeployment"
        Resource = "*"
      },
      {
        Sid    = "ProjectReleases"
        Effect = "Allow"
        # ListExecutions/GetExecutionHistory: make release-wait follows this commit's execution.
        Action = [
          "states:StartExecution", "states:DescribeStateMachine", "states:DescribeExecution", "states:StopExecution",
          "states:ListExecutions", "states:GetExecutionHistory",
        ]
        Resource = [local.arns.state_machine, "${local.arns.executions}:*"]
      },
      {
        Sid = "ProjectPipeline"
        # The listing calls only feed release-wait's link to the pipeline run.
        Effect   = "Allow"
        Action   = ["codepipeline:StartPipelineExecution", "codepipeline:ListPipelineExecutions", "codepipeline:ListActionExecutions"]
        Resource = local.arns.pipeline
      },
      {
        Sid      = "ProjectTopic"
        Effect   = "Allow"
        Action   = "sns:Publish"
        Resource = local.arns.topic
      },
      {
        Sid      = "ProjectAlarms"
        Effect   = "Allow"
        Action   = "cloudwatch:DescribeAlarms"
        Resource = local.alarm_arns
      },
    ]
  })
}
