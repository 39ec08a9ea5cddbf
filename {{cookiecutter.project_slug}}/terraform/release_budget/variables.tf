variable "deployment_strategy" {
  type        = string
  description = "Production's CodeDeploy Lambda config without the 'CodeDeployDefault.Lambda' prefix (validated by the root module)."
}

variable "staging_deployment_strategy" {
  type        = string
  description = "Staging's CodeDeploy Lambda config without the 'CodeDeployDefault.Lambda' prefix (validated by the root module)."
}

variable "manual_approval" {
  type        = bool
  description = "Whether the release waits in ApproveProduction for a person."
}

variable "approval_timeout_seconds" {
  type        = number
  description = "How long ApproveProduction waits for an answer before the release rolls back."
}

variable "task_timeouts" {
  type        = map(number)
  description = "Timeout in seconds of each pipeline Lambda, keyed like local.all_pipeline_functions."
}

variable "poll_interval_seconds" {
  type        = number
  description = "Seconds between two deployment status polls on AWS (the execution input's poll_interval_seconds)."
  default     = 15
}
