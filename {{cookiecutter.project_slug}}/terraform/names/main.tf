# The one definition of every name the release pipeline stack (terraform/) creates, and of the ARNs
# built from them. Both roots use this module: terraform/ names its resources with it, and
# terraform/bootstrap grants the CI roles and the permissions boundary exactly these ARNs. Scoping
# IAM by a name prefix ("<project>-*") would also match every other project whose slug starts the
# same way (orders → orders-service-...), so no ARN below ends in a wildcard on the project name.

variable "project" {
  type        = string
  description = "Project slug."
}

variable "account_id" {
  type        = string
  description = "AWS account id of the stack."
}

variable "region" {
  type        = string
  description = "Region of the stack."
}

variable "partition" {
  type        = string
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
}

locals {
  p      = var.project
  prefix = "arn:${var.partition}"

  # Keys are the directories under lambdas/. approval_notifier exists only with manual approval;
  # the bootstrap grants it either way (an exact ARN of a function that may not exist grants nothing).
  pipeline_function_keys = ["validate_artifact", "deploy", "deployment_status", "smoke_tests", "rollback", "approval_notifier"]
  pipeline_functions     = { for key in local.pipeline_function_keys : key => "${local.p}-${replace(key, "_", "-")}" }

  # The application's functions: each key is a directory under lambdas/ (handler.py and its own
  # smoke_checks.json), released together, promoted together and rolled back together. The first
  # is the primary one (app_function_name output, `local status` aliases). To add a function, add
  # its directory and its key here (README, "Adding a function"); release-tooling package refuses a
  # directory under lambdas/ that is not declared here, and a key here without its directory.
  app_function_keys = ["app"]
  app_functions     = { for key in local.app_function_keys : key => "${local.p}-${replace(key, "_", "-")}" }
  app_function      = local.app_functions[local.app_function_keys[0]]
  functions         = merge(local.pipeline_functions, local.app_functions)

  release_aliases = ["staging", "production"]
  state_machine   = "${local.p}-release"
  pipeline        = "${local.p}-release"
  codedeploy_app  = "${local.p}-app"
  artifact_bucket = "${local.p}-artifacts-${var.account_id}"
  topic           = "${local.p}-release-events"
  kms_alias       = "alias/${local.p}-pipeline"
  boundary        = "${local.p}-workload-boundary"
  rules           = { artifact_uploaded = "${local.p}-artifact-uploaded", release_status = "${local.p}-release-status" }
  # "<function key>/<alias>" => name. One CodeDeploy deployment group and one error alarm per
  # function and alias; the primary function's groups keep the alias names.
  app_function_aliases = { for pair in setproduct(local.app_function_keys, local.release_aliases) : "${pair[0]}/${pair[1]}" => { function = pair[0], alias = pair[1] } }
  deployment_groups    = { for key, fa in local.app_function_aliases : key => fa.function == local.app_function_keys[0] ? fa.alias : "${replace(fa.function, "_", "-")}-${fa.alias}" }
  alarms               = { for key, fa in local.app_function_aliases : key => "${local.app_functions[fa.function]}-errors-${fa.alias}" }
  ci_roles             = { plan = "${local.p}-github-plan", apply = "${local.p}-github-apply", approve = "${local.p}-github-approve" }

  roles = merge(
    { for key, name in local.functions : key => "${name}-role" },
    {
      codedeploy       = "${local.p}-codedeploy-role"
      state_machine    = "${local.p}-state-machine-role"
      codepipeline     = "${local.p}-codepipeline-role"
      pipeline_trigger = "${local.p}-pipeline-trigger-role"
    },
  )

  log_groups = merge(
    { for key, name in local.functions : key => "/aws/lambda/${name}" },
    # The /aws/vendedlogs/ prefix keeps Step Functions from growing the account's log resource policy.
    { state_machine = "/aws/vendedlogs/states/${local.state_machine}" },
  )

  regional = "${var.region}:${var.account_id}"
}

output "names" {
  description = "Resource names of the main stack."
  value = {
    pipeline_functions = local.pipeline_functions
    app_function       = local.app_function
    app_function_keys  = local.app_function_keys
    app_functions      = local.app_functions
    deployment_groups  = local.deployment_groups
    # "<function key>/<alias>" => {function, alias}: what the groups and alarms are keyed by.
    app_function_aliases = local.app_function_aliases
    functions            = local.functions
    release_aliases      = local.release_aliases
    state_machine        = local.state_machine
    pipeline             = local.pipeline
    codedeploy_app       = local.codedeploy_app
    artifact_bucket      = local.artifact_bucket
    topic                = local.topic
    kms_alias            = local.kms_alias
    boundary             = local.boundary
    rules                = local.rules
    alarms               = local.alarms
    roles                = local.roles
    ci_roles             = local.ci_roles
    log_groups           = local.log_groups
  }
}

output "arns" {
  description = "Exact ARNs built from those names (IAM resources, key policy principals)."
  value = {
    artifact_bucket = "${local.prefix}:s3:::${local.artifact_bucket}"
    functions       = { for key, name in local.functions : key => "${local.prefix}:lambda:${local.regional}:function:${name}" }
    roles           = { for key, name in local.roles : key => "${local.prefix}:iam::${var.account_id}:role/${name}" }
    ci_roles        = { for key, name in local.ci_roles : key => "${local.prefix}:iam::${var.account_id}:role/${name}" }
    log_groups      = { for key, name in local.log_groups : key => "${local.prefix}:logs:${local.regional}:log-group:${name}" }
    state_machine   = "${local.prefix}:states:${local.regional}:stateMachine:${local.state_machine}"
    executions      = "${local.prefix}:states:${local.regional}:execution:${local.state_machine}"
    pipeline        = "${local.prefix}:codepipeline:${local.regional}:${local.pipeline}"
    codedeploy_app  = "${local.prefix}:codedeploy:${local.regional}:application:${local.codedeploy_app}"
    # One deployment group per app function and alias ("<function key>/<alias>"): <application>/<group>.
    deployment_groups  = { for key, group in local.deployment_groups : key => "${local.prefix}:codedeploy:${local.regional}:deploymentgroup:${local.codedeploy_app}/${group}" }
    deployment_configs = "${local.prefix}:codedeploy:${local.regional}:deploymentconfig:CodeDeployDefault.Lambda*"
    topic              = "${local.prefix}:sns:${local.regional}:${local.topic}"
    rules              = { for key, name in local.rules : key => "${local.prefix}:events:${local.regional}:rule/${name}" }
    alarms             = { for key, name in local.alarms : key => "${local.prefix}:cloudwatch:${local.regional}:alarm:${name}" }
    kms_alias          = "${local.prefix}:kms:${local.regional}:${local.kms_alias}"
    boundary           = "${local.prefix}:iam::${var.account_id}:policy/${local.boundary}"
  }
}
