provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      Project   = var.project
      ManagedBy = "terraform"
    })
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

# Names and ARNs shared by every file come from ./names, the module terraform/bootstrap also uses to
# grant the CI roles exactly these resources. Each name is listed in hooks/pre_gen_project.py, which
# limits the slug so the longest of them still fits AWS's length limits.
module "names" {
  source     = "./names"
  project    = var.project
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
}

locals {
  name       = var.project
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  names      = module.names.names
  arns       = module.names.arns

  app_function_name = local.names.app_function
  # The application's functions by key (directory under lambdas/), the primary one first in
  # app_function_keys; terraform/names holds the list.
  app_function_keys  = local.names.app_function_keys
  app_functions      = local.names.app_functions
  state_machine_name = local.names.state_machine
  pipeline_name      = local.names.pipeline
  codedeploy_app     = local.names.codedeploy_app
  release_aliases    = toset(local.names.release_aliases)

  # The object whose creation starts a release (see release-tooling package upload).
  pipeline_source_key = "pipeline/source.zip"
  releases_prefix     = "releases/"
  # CodePipeline keeps its artifact store under the first 20 characters of the pipeline name.
  pipeline_artifacts_prefix = "${substr(local.pipeline_name, 0, 20)}/"

  # CodeDeploy ARNs are built from names: the resources do not export the ones IAM needs.
  codedeploy_app_arn = local.arns.codedeploy_app

  # Roles get the bootstrap's permissions boundary so the CI apply role cannot create a role more
  # powerful than this stack needs (see terraform/bootstrap/iam.tf).
  permissions_boundary_arn = var.permissions_boundary_name == "" ? null : "arn:${local.partition}:iam::${local.account_id}:policy/${var.permissions_boundary_name}"
}
