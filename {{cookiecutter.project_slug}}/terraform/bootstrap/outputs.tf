output "state_bucket" {
  description = "Bucket holding the main stack's state (TF_STATE_BUCKET)."
  value       = aws_s3_bucket.state.bucket
}

output "state_key" {
  description = "Key of the main stack's state in the bucket (release-tooling terraform default; TF_STATE_KEY if you changed it)."
  value       = var.state_key
}

output "state_kms_key_arn" {
  description = "Key encrypting the main stack's state (TF_STATE_KMS_KEY_ARN): the S3 backend's kms_key_id, so state is never written with SSE-S3."
  value       = aws_kms_key.state.arn
}

output "plan_role_arn" {
  description = "Role assumed by pull-request workflows for terraform plan."
  value       = aws_iam_role.plan.arn
}

output "apply_role_arn" {
  description = "Role assumed by jobs in the production environment for terraform apply."
  value       = aws_iam_role.apply.arn
}

output "approve_role_arn" {
  description = "Role the Approve release workflow assumes (manual_approval only; null without it)."
  value       = var.manual_approval ? aws_iam_role.approve[0].arn : null
}

output "permissions_boundary_arn" {
  description = "Boundary every role of the main stack must carry (variable permissions_boundary_name there)."
  value       = aws_iam_policy.workload_boundary.arn
}

output "oidc_provider_arn" {
  description = "The account's GitHub Actions OIDC provider."
  value       = local.oidc_provider_arn
}

output "github_repository_variables" {
  description = "Repository variables (Settings > Secrets and variables > Actions > Variables) the workflows read. None of them is secret."
  value = merge(
    {
      AWS_REGION           = var.aws_region
      AWS_PLAN_ROLE_ARN    = aws_iam_role.plan.arn
      AWS_APPLY_ROLE_ARN   = aws_iam_role.apply.arn
      TF_STATE_BUCKET      = aws_s3_bucket.state.bucket
      TF_STATE_KEY         = var.state_key
      TF_STATE_KMS_KEY_ARN = aws_kms_key.state.arn
    },
    var.manual_approval ? { AWS_APPROVE_ROLE_ARN = aws_iam_role.approve[0].arn } : {},
  )
}

output "github_cli_commands" {
  description = "The same variables as gh commands, ready to paste."
  value = join("\n", concat([
    "gh variable set AWS_REGION --repo ${var.github_repository} --body '${var.aws_region}'",
    "gh variable set AWS_PLAN_ROLE_ARN --repo ${var.github_repository} --body '${aws_iam_role.plan.arn}'",
    "gh variable set AWS_APPLY_ROLE_ARN --repo ${var.github_repository} --body '${aws_iam_role.apply.arn}'",
    "gh variable set TF_STATE_BUCKET --repo ${var.github_repository} --body '${aws_s3_bucket.state.bucket}'",
    "gh variable set TF_STATE_KEY --repo ${var.github_repository} --body '${var.state_key}'",
    "gh variable set TF_STATE_KMS_KEY_ARN --repo ${var.github_repository} --body '${aws_kms_key.state.arn}'",
    ], var.manual_approval ? [
    "gh variable set AWS_APPROVE_ROLE_ARN --repo ${var.github_repository} --body '${aws_iam_role.approve[0].arn}'",
  ] : []))
}

output "github_repository" {
  description = "The repository (owner/name) whose workflows the CI roles trust."
  value       = var.github_repository
}
