# One customer managed key encrypts the artifact bucket, the Lambda environments, every log group and
# the SNS topic, so one key policy says which AWS services may use it.
#
# The CI roles (terraform/bootstrap) get this key through this policy, naming them by exact ARN, not
# through IAM policies conditioned on a Project tag: whoever may tag a key could take it over that way,
# and tag-based authorization takes up to five minutes after tagging, long enough to fail the first
# apply midway (AWS KMS Developer Guide, "ABAC for AWS KMS"; "Key policies in AWS KMS").
resource "aws_kms_key" "pipeline" {
  description             = "${local.name} release pipeline: artifacts, logs, Lambda environment, notifications"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Delegate to IAM: roles in this account use the key only where their IAM policy allows it.
        Sid       = "AccountIamPolicies"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # The apply role administers this key (it created it; the key policy is where that power
        # lives, see the bootstrap's CreateKey statement).
        Sid       = "CiApplyRoleAdministersKey"
        Effect    = "Allow"
        Principal = { AWS = local.arns.ci_roles.apply }
        Action = [
          "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags",
          "kms:EnableKeyRotation", "kms:PutKeyPolicy", "kms:UpdateKeyDescription", "kms:ScheduleKeyDeletion",
          "kms:TagResource", "kms:UntagResource", "kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias",
        ]
        Resource = "*"
      },
      {
        # Uploads to the SSE-KMS artifact bucket (releases/, pipeline/source.zip) and Lambda
        # functions created with this key for their environment, only through those services.
        Sid       = "CiApplyRoleUsesKeyThroughS3AndLambda"
        Effect    = "Allow"
        Principal = { AWS = local.arns.ci_roles.apply }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*"
        Condition = { StringEquals = { "kms:ViaService" = ["s3.${local.region}.amazonaws.com", "lambda.${local.region}.amazonaws.com"] } }
      },
      {
        # Lambda creates a grant on the key for each function's environment; only AWS services may
        # receive grants from the apply role (AWS KMS Developer Guide, "kms:GrantIsForAWSResource").
        Sid       = "CiApplyRoleGrantsOnlyToAwsServices"
        Effect    = "Allow"
        Principal = { AWS = local.arns.ci_roles.apply }
        Action    = "kms:CreateGrant"
        Resource  = "*"
        Condition = { Bool = { "kms:GrantIsForAWSResource" = "true" } }
      },
      {
        Sid       = "CiPlanRoleReadsKey"
        Effect    = "Allow"
        Principal = { AWS = local.arns.ci_roles.plan }
        Action    = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
        Resource  = "*"
      },
      {
        # lambda:GetFunction returns environment variables encrypted with this key, and Lambda
        # decrypts them for a caller allowed kms:Decrypt. Without it every plan and drift check shows
        # the environments as changed (Lambda Developer Guide, "Securing Lambda environment variables").
        Sid       = "CiPlanRoleReadsFunctionEnvironments"
        Effect    = "Allow"
        Principal = { AWS = local.arns.ci_roles.plan }
        Action    = "kms:Decrypt"
        Resource  = "*"
        Condition = { StringEquals = { "kms:ViaService" = "lambda.${local.region}.amazonaws.com" } }
      },
      {
        Sid       = "CloudWatchLogsForThisProject"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = values(local.arns.log_groups)
          }
        }
      },
      {
        # EventBridge (release status) and CloudWatch alarms publish to the encrypted SNS topic; the
        # topic policy (monitoring.tf) limits which rule and alarms may publish.
        Sid       = "EventsAndAlarmsPublishToEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = ["events.amazonaws.com", "cloudwatch.amazonaws.com"] }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
      },
    ]
  })
}

resource "aws_kms_alias" "pipeline" {
  name          = local.names.kms_alias
  target_key_id = aws_kms_key.pipeline.key_id
}

resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_18:Server access logs would need a second bucket that cannot use SSE-KMS; only the pipeline roles touch this bucket, audit them with CloudTrail S3 data events instead.
  #checkov:skip=CKV_AWS_144:Artifacts are rebuilt from git by release-tooling package and deployed versions live on in Lambda; a replica in a second region buys nothing.
  bucket = local.names.artifact_bucket
}

resource "aws_s3_bucket_ownership_controls" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  # CodePipeline's S3 source action requires a versioned bucket.
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.pipeline.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    id     = "whole-bucket-housekeeping"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }
  }

  rule {
    id     = "expire-old-releases"
    status = "Enabled"

    filter {
      prefix = local.releases_prefix
    }

    expiration {
      days = var.release_retention_days
    }
  }

  rule {
    # Copies of execution-input.json CodePipeline passes between stages; only a run in progress needs them.
    id     = "expire-pipeline-artifacts"
    status = "Enabled"

    filter {
      prefix = local.pipeline_artifacts_prefix
    }

    expiration {
      days = 30
    }
  }

  depends_on = [aws_s3_bucket_versioning.artifacts]
}

resource "aws_s3_bucket_policy" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.artifacts.arn, "${aws_s3_bucket.artifacts.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })

  # A bucket policy is rejected while the public access block is still being applied.
  depends_on = [aws_s3_bucket_public_access_block.artifacts]
}

# Object Created events go to EventBridge, where the artifact-uploaded rule starts the pipeline.
resource "aws_s3_bucket_notification" "artifacts" {
  bucket      = aws_s3_bucket.artifacts.id
  eventbridge = true
}
