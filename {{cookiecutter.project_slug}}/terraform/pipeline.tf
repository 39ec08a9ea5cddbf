# CodePipeline V2 turns "a release was uploaded" into exactly one Step Functions execution at a time
# (QUEUED). Source: the pipeline/source.zip object holding execution-input.json; the Invoke stage
# passes that file to the state machine and fails when the execution fails.

resource "aws_iam_role" "codepipeline" {
  name        = local.names.roles.codepipeline
  description = "Runs the ${local.pipeline_name} pipeline"
  # The trust policy AWS documents for the CodePipeline service role ("Create the CodePipeline service
  # role (CLI)", CodePipeline User Guide) has no aws:SourceAccount/SourceArn condition, and the
  # CodePipeline guide documents no confused-deputy keys for it, so none is added here.
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "codepipeline.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  permissions_boundary = local.permissions_boundary_arn
}

resource "aws_iam_role_policy" "codepipeline" {
  name = "release-pipeline"
  role = aws_iam_role.codepipeline.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadSourceObject"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:GetObjectVersion"]
        Resource = "${local.arns.artifact_bucket}/${local.pipeline_source_key}"
      },
      {
        Sid    = "CheckSourceBucket"
        Effect = "Allow"
        # GetBucketAcl is in AWS's documented minimum service-role policy for S3 artifact stores
        # (CodePipeline User Guide, "Manage the CodePipeline service role").
        Action   = ["s3:GetBucketVersioning", "s3:GetBucketAcl", "s3:GetBucketLocation"]
        Resource = local.arns.artifact_bucket
      },
      {
        Sid      = "ArtifactStore"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:PutObjectAcl"]
        Resource = "${local.arns.artifact_bucket}/${local.pipeline_artifacts_prefix}*"
      },
      {
        Sid      = "EncryptArtifacts"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
        Resource = aws_kms_key.pipeline.arn
      },
      {
        Sid      = "StartRelease"
        Effect   = "Allow"
        Action   = ["states:StartExecution", "states:DescribeStateMachine"]
        Resource = local.arns.state_machine
      },
      {
        Sid      = "FollowRelease"
        Effect   = "Allow"
        Action   = ["states:DescribeExecution", "states:StopExecution"]
        Resource = "${local.arns.executions}:*"
      },
    ]
  })
}

locals {
  # Source action name; the EventBridge target's revision override names it too.
  pipeline_source_action = "ReleaseUpload"
}

resource "aws_codepipeline" "release" {
  name           = local.pipeline_name
  pipeline_type  = "V2"
  execution_mode = "QUEUED"
  role_arn       = aws_iam_role.codepipeline.arn

  artifact_store {
    location = aws_s3_bucket.artifacts.bucket
    type     = "S3"

    encryption_key {
      id   = aws_kms_key.pipeline.arn
      type = "KMS"
    }
  }

  stage {
    name = "Source"

    action {
      name             = local.pipeline_source_action
      category         = "Source"
      owner            = "AWS"
      provider         = "S3"
      version          = "1"
      output_artifacts = ["release_input"]

      configuration = {
        S3Bucket    = aws_s3_bucket.artifacts.bucket
        S3ObjectKey = local.pipeline_source_key
        # Started by the artifact-uploaded EventBridge rule instead of polling.
        PollForSourceChanges = "false"
      }
    }
  }

  stage {
    name = "Release"

    action {
      name            = "RunStateMachine"
      category        = "Invoke"
      owner           = "AWS"
      provider        = "StepFunctions"
      version         = "1"
      input_artifacts = ["release_input"]

      configuration = {
        StateMachineArn     = aws_sfn_state_machine.release.arn
        ExecutionNamePrefix = "release"
        InputType           = "FilePath"
        Input               = "execution-input.json"
      }
    }
  }

  depends_on = [aws_iam_role_policy.codepipeline]
}

# ---------------------------------------------------------------- Trigger: S3 Object Created → pipeline

resource "aws_cloudwatch_event_rule" "artifact_uploaded" {
  name        = local.names.rules.artifact_uploaded
  description = "Starts ${local.pipeline_name} when a release is uploaded to ${local.pipeline_source_key}"
  event_pattern = jsonencode({
    source      = ["aws.s3"]
    detail-type = ["Object Created"]
    detail = {
      bucket = { name = [aws_s3_bucket.artifacts.bucket] }
      object = { key = [local.pipeline_source_key] }
    }
  })
}

resource "aws_iam_role" "pipeline_trigger" {
  name        = local.names.roles.pipeline_trigger
  description = "Lets the ${local.name}-artifact-uploaded rule start ${local.pipeline_name}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnEquals    = { "aws:SourceArn" = local.arns.rules.artifact_uploaded }
      }
    }]
  })
  permissions_boundary = local.permissions_boundary_arn
}

resource "aws_iam_role_policy" "pipeline_trigger" {
  name = "start-pipeline"
  role = aws_iam_role.pipeline_trigger.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "StartReleasePipeline"
      Effect   = "Allow"
      Action   = "codepipeline:StartPipelineExecution"
      Resource = local.arns.pipeline
    }]
  })
}

resource "aws_cloudwatch_event_target" "artifact_uploaded" {
  rule      = aws_cloudwatch_event_rule.artifact_uploaded.name
  target_id = "release-pipeline"
  arn       = aws_codepipeline.release.arn
  role_arn  = aws_iam_role.pipeline_trigger.arn

  # Pin the run to the uploaded object version: a run waiting in the QUEUED pipeline would otherwise
  # read whatever pipeline/source.zip is newest when it starts. The template is the
  # StartPipelineExecution body with a source revision override ("Start a pipeline with a source
  # revision override" and "Connecting to Amazon S3 source actions with a source enabled for events",
  # CodePipeline User Guide; SourceRevisionOverride, CodePipeline API Reference).
  input_transformer {
    input_paths = {
      revisionValue = "$.detail.object.version-id"
    }
    # A plain string, not jsonencode(): jsonencode escapes "<" and ">" as \u003c/\u003e, and
    # EventBridge then never substitutes the placeholder (the source action would look for a
    # version literally named "<revisionValue>").
    input_template = <<-EOT
      {"sourceRevisions": [{"actionName": "${local.pipeline_source_action}", "revisionType": "S3_OBJECT_VERSION_ID", "revisionValue": "<revisionValue>"}]}
    EOT
  }
}
