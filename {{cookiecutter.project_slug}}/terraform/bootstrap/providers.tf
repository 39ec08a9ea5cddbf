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

# The same module terraform/ names its resources with: the CI roles and the boundary are granted
# exactly the ARNs the main stack creates, never a "<project>-*" prefix (which would also match other
# projects whose slug starts the same way).
module "names" {
  source     = "../names"
  project    = var.project
  account_id = data.aws_caller_identity.current.account_id
  region     = var.aws_region
  partition  = data.aws_partition.current.partition
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = var.aws_region
  names      = module.names.names
  arns       = module.names.arns

  function_arns           = values(local.arns.functions)
  function_and_qualifiers = concat(local.function_arns, [for arn in local.function_arns : "${arn}:*"])
  stack_role_arns         = values(local.arns.roles)
  log_group_arns          = values(local.arns.log_groups)
  log_group_and_streams   = concat(local.log_group_arns, [for arn in local.log_group_arns : "${arn}:*"])
  codedeploy_arns         = concat([local.arns.codedeploy_app], values(local.arns.deployment_groups))
  alarm_arns              = values(local.arns.alarms)
  rule_arns               = values(local.arns.rules)
  oidc_github_host        = "token.actions.githubusercontent.com"
  # Every KMS key ARN of this account and region: only used with conditions that keep it to this
  # project's services (kms:ViaService), never with tags.
  kms_keys_in_region = "arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"
}
