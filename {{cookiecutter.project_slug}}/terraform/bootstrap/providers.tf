provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project   = var.project
      ManagedBy = "terraform-bootstrap"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = var.aws_region
  project    = var.project

  # ARN patterns of everything the main stack (terraform/) creates; every name there starts with the
  # project slug, which is what lets the CI roles be scoped by prefix.
  arn = {
    artifact_bucket  = "arn:${local.partition}:s3:::${local.project}-artifacts-${local.account_id}"
    functions        = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.project}-*"
    roles            = "arn:${local.partition}:iam::${local.account_id}:role/${local.project}-*"
    github_roles     = "arn:${local.partition}:iam::${local.account_id}:role/${local.project}-github-*"
    lambda_logs      = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${local.project}-*"
    states_logs      = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/vendedlogs/states/${local.project}-*"
    state_machines   = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.project}-*"
    executions       = "arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${local.project}-*"
    pipelines        = "arn:${local.partition}:codepipeline:${local.region}:${local.account_id}:${local.project}-*"
    cd_applications  = "arn:${local.partition}:codedeploy:${local.region}:${local.account_id}:application:${local.project}-*"
    cd_groups        = "arn:${local.partition}:codedeploy:${local.region}:${local.account_id}:deploymentgroup:${local.project}-*"
    cd_configs       = "arn:${local.partition}:codedeploy:${local.region}:${local.account_id}:deploymentconfig:*"
    topics           = "arn:${local.partition}:sns:${local.region}:${local.account_id}:${local.project}-*"
    rules            = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${local.project}-*"
    alarms           = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${local.project}-*"
    kms_keys         = "arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"
    kms_aliases      = "arn:${local.partition}:kms:${local.region}:${local.account_id}:alias/${local.project}-*"
    boundary         = "arn:${local.partition}:iam::${local.account_id}:policy/${local.project}-workload-boundary"
    oidc_github_host = "token.actions.githubusercontent.com"
  }

  # The main stack's KMS key carries this tag (its provider default_tags), which scopes key access
  # without knowing the key id in advance.
  project_tag_condition = { StringEquals = { "aws:ResourceTag/Project" = local.project } }
}
