locals {
  # Zips written by release-tooling package (release-tooling terraform validate|plan runs it first).
  build_dir = "${path.module}/../build"

  app_handler = "handler.handler"

  # Every application function a release deploys, in app_function_keys order (the primary first):
  # its key (directory under lambdas/, zip name in the release), function name and the CodeDeploy
  # deployment group of each alias. The pipeline functions read it as JSON.
  app_functions_json = jsonencode([
    for key in local.app_function_keys : {
      key               = key
      function_name     = local.app_functions[key]
      deployment_groups = { for alias in local.names.release_aliases : alias => local.names.deployment_groups["${key}/${alias}"] }
    }
  ])

  deployment_environment = {
    APP_FUNCTIONS          = local.app_functions_json
    CODEDEPLOY_APPLICATION = local.codedeploy_app
  }

  # Every pipeline function, keyed by its directory under lambdas/. One resource block per kind
  # (role, policy, log group, function) iterates over this map.
  all_pipeline_functions = {
    validate_artifact = {
      description = "Checks a release zip against its manifest before anything is deployed"
      timeout     = 60
      memory_size = 512
      # The handler a release's manifest must name: the one the app function is configured with.
      environment = { MAX_ARTIFACT_BYTES = tostring(var.max_artifact_bytes), EXPECTED_HANDLER = local.app_handler, APP_FUNCTIONS = local.app_functions_json }
    }
    deploy = {
      description = "Publishes the release as a version of each app function and shifts an alias of each through CodeDeploy"
      timeout     = 300
      memory_size = 256
      environment = local.deployment_environment
    }
    deployment_status = {
      description = "Reports the state of the CodeDeploy deployments of an alias"
      timeout     = 30
      memory_size = 256
      environment = local.deployment_environment
    }
    smoke_tests = {
      description = "Invokes each app function's staging alias with its own smoke checks"
      timeout     = 120
      memory_size = 256
      environment = { APP_FUNCTIONS = local.app_functions_json, SMOKE_ALIAS = "staging" }
    }
    rollback = {
      description = "Stops active deployments and points aliases back to their previous versions"
      timeout     = 120
      memory_size = 256
      environment = local.deployment_environment
    }
    approval_notifier = {
      description = "Sends the production approval request (with its task token) to the release topic"
      timeout     = 30
      memory_size = 256
      environment = {
        TOPIC_ARN = aws_sns_topic.release_events.arn
        # Where a person answers without console access (.github/workflows/approve-release.yml).
        APPROVAL_WORKFLOW_URL = "https://github.com/${var.github_repository}/actions/workflows/approve-release.yml"
      }
    }
  }

  pipeline_functions = {
    for key, function in local.all_pipeline_functions : key => function
    if key != "approval_notifier" || var.manual_approval
  }

  pipeline_function_names = { for key in keys(local.pipeline_functions) : key => local.names.pipeline_functions[key] }

  # Log groups are created before the functions, encrypted and with retention, so Lambda never
  # creates an unencrypted, never-expiring one on first invocation.
  function_log_groups = { for key in concat(keys(local.pipeline_functions), local.app_function_keys) : key => local.names.log_groups[key] }
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.function_log_groups

  name              = each.value
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.pipeline.arn
}

resource "aws_lambda_function" "pipeline" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by Step Functions (lambda:invoke), which retries and catches failures; a dead-letter queue only applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_117:Calls only AWS APIs (S3, Lambda, CodeDeploy, SNS) and reaches no private resource; a VPC would add NAT or endpoint cost and nothing else.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is opt-in (var.pipeline_reserved_concurrency): Lambda keeps 100 unreserved executions per account, so a default reservation fails in new, low-quota accounts.
  #checkov:skip=CKV_AWS_272:Pipeline code is deployed by terraform apply from the reviewed commit; code signing needs an AWS Signer profile, which a team can add when it needs signed provenance.
  for_each = local.pipeline_functions

  function_name = local.pipeline_function_names[each.key]
  description   = each.value.description
  role          = aws_iam_role.pipeline_function[each.key].arn
  runtime       = var.python_runtime
  handler       = "handler.handler"
  timeout       = each.value.timeout
  memory_size   = each.value.memory_size

  filename         = "${local.build_dir}/${each.key}.zip"
  source_code_hash = filebase64sha256("${local.build_dir}/${each.key}.zip")

  reserved_concurrent_executions = var.pipeline_reserved_concurrency
  kms_key_arn                    = aws_kms_key.pipeline.arn

  environment {
    variables = merge(
      {
        LOG_LEVEL    = var.log_level
        SERVICE_NAME = local.pipeline_function_names[each.key]
      },
      each.value.environment,
    )
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.pipeline_function]
}

# One function per app function key (terraform/names). Every one gets the same settings.
resource "aws_lambda_function" "app" {
  #checkov:skip=CKV_AWS_116:The template's application is invoked synchronously (smoke tests, callers); add a dead-letter queue or an on-failure destination when something invokes it asynchronously.
  #checkov:skip=CKV_AWS_117:The template's application reaches no private resource; put it in a VPC when it needs one.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is opt-in (var.app_reserved_concurrency): Lambda keeps 100 unreserved executions per account, so a default reservation fails in new, low-quota accounts.
  #checkov:skip=CKV_AWS_272:Release zips are verified against the sha256 in their manifest by validate_artifact before deployment; code signing needs an AWS Signer profile, which a team can add when it needs signed provenance.
  for_each = local.app_functions

  function_name = each.value
  description   = each.key == local.app_function_keys[0] ? "The application this pipeline delivers" : "The application's ${each.key} function, delivered with it"
  role          = aws_iam_role.app[each.key].arn
  runtime       = var.python_runtime
  handler       = local.app_handler
  timeout       = var.app_timeout_seconds
  memory_size   = var.app_memory_mb

  # The first apply uploads the current build; after that every code change arrives through the
  # pipeline (deploy publishes a version per commit), so Terraform owns configuration, not code.
  # Configuration changes land on $LATEST and reach the aliases with the next release.
  filename         = "${local.build_dir}/${each.key}.zip"
  source_code_hash = filebase64sha256("${local.build_dir}/${each.key}.zip")
  publish          = false

  reserved_concurrent_executions = var.app_reserved_concurrency
  kms_key_arn                    = aws_kms_key.pipeline.arn

  environment {
    variables = {
      LOG_LEVEL    = var.log_level
      SERVICE_NAME = each.value
    }
  }

  tracing_config {
    mode = "Active"
  }

  lifecycle {
    ignore_changes = [filename, source_code_hash]
  }

  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.app]
}

resource "aws_lambda_alias" "app" {
  for_each = local.names.app_function_aliases

  name             = each.value.alias
  description      = "${each.value.alias} traffic; moved by the release pipeline through CodeDeploy"
  function_name    = aws_lambda_function.app[each.value.function].function_name
  function_version = "$LATEST"

  # Terraform only creates the aliases. From then on the deploy/rollback functions and CodeDeploy
  # move them (version and weighted routing during a canary); reverting that here would undo releases.
  lifecycle {
    ignore_changes = [function_version, routing_config]
  }
}

# A stack applied before the app functions were a list keeps its function, aliases and role.
moved {
  from = aws_lambda_function.app
  to   = aws_lambda_function.app["app"]
}

moved {
  from = aws_lambda_alias.app["staging"]
  to   = aws_lambda_alias.app["app/staging"]
}

moved {
  from = aws_lambda_alias.app["production"]
  to   = aws_lambda_alias.app["app/production"]
}
