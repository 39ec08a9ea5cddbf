output "aws_region" {
  description = "Region everything was deployed to."
  value       = local.region
}

output "artifact_bucket" {
  description = "Bucket receiving releases (releases/<sha>/app.zip, manifest.json) and pipeline/source.zip, which starts a release."
  value       = aws_s3_bucket.artifacts.bucket
}

output "kms_key_arn" {
  description = "Customer managed key encrypting artifacts, logs, Lambda environments and the release topic."
  value       = aws_kms_key.pipeline.arn
}

output "state_machine_arn" {
  description = "ARN of the release state machine (one execution per release)."
  value       = aws_sfn_state_machine.release.arn
}

output "state_machine_name" {
  description = "Name of the release state machine."
  value       = aws_sfn_state_machine.release.name
}

output "pipeline_name" {
  description = "CodePipeline started by every upload of pipeline/source.zip."
  value       = aws_codepipeline.release.name
}

output "app_function_name" {
  description = "The primary application function (the first of terraform/names app_function_keys)."
  value       = aws_lambda_function.app[local.app_function_keys[0]].function_name
}

output "app_function_names" {
  description = "Every application function a release deploys, by key (directory under lambdas/)."
  value       = { for key, function in aws_lambda_function.app : key => function.function_name }
}

output "alias_arns" {
  description = "ARNs of the primary application function's aliases, by alias name (staging, production)."
  value       = { for alias in local.names.release_aliases : alias => aws_lambda_alias.app["${local.app_function_keys[0]}/${alias}"].arn }
}

output "pipeline_function_names" {
  description = "Pipeline function names by lambdas/ directory (validate_artifact, deploy, ...)."
  value       = { for key, function in aws_lambda_function.pipeline : key => function.function_name }
}

output "codedeploy_application" {
  description = "CodeDeploy application shifting traffic between app versions."
  value       = aws_codedeploy_app.app.name
}

output "deployment_groups" {
  description = "CodeDeploy deployment group of the primary application function, by alias."
  value       = { for alias in local.names.release_aliases : alias => aws_codedeploy_deployment_group.alias["${local.app_function_keys[0]}/${alias}"].deployment_group_name }
}

output "app_deployment_groups" {
  description = "CodeDeploy deployment groups of every application function: key => alias => group."
  value       = { for key in local.app_function_keys : key => { for alias in local.names.release_aliases : alias => aws_codedeploy_deployment_group.alias["${key}/${alias}"].deployment_group_name } }
}

output "sns_topic_arn" {
  description = "Topic receiving release results, alarm changes and (with manual approval) approval requests."
  value       = aws_sns_topic.release_events.arn
}
