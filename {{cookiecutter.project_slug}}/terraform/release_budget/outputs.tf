output "shift_minutes" {
  description = "Minutes CodeDeploy takes to shift all traffic with each stage's strategy (staging, production)."
  value       = local.stage_shift_minutes
}

output "deployment_timeout_seconds" {
  description = "How long each stage's deployment (staging, production) may stay in progress before the release rolls back."
  value       = local.deployment_timeout_seconds
}

output "poll_interval_seconds" {
  description = "Seconds between two deployment status polls on AWS."
  value       = var.poll_interval_seconds
}

output "max_polls" {
  description = "Status polls each stage (staging, production) can take within its deployment_timeout_seconds."
  value       = local.max_polls
}

output "approval_timeout_seconds" {
  description = "TimeoutSeconds of ApproveProduction (0 when there is no approval)."
  value       = local.approval_seconds
}

output "stage_worst_seconds" {
  description = "Worst case of each stage, the terms of state_machine_timeout_seconds."
  value       = local.stage_worst_seconds
}

output "state_machine_timeout_seconds" {
  description = "TimeoutSeconds of the release state machine: the sum of every stage's worst case."
  value       = local.state_machine_timeout_seconds
}

output "release_wait_seconds" {
  description = "How long release-wait follows a release before it stops: the machine's timeout plus pipeline start-up."
  value       = local.release_wait_seconds
}
