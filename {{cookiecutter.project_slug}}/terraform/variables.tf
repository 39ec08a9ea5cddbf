variable "project" {
  type        = string
  description = "Name prefix for every resource (the project slug). At most 40 characters so the longest derived name, the artifact bucket '<project>-artifacts-<account id>', fits S3's 63."
  default     = "{{ cookiecutter.project_slug }}"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.project)) && length(var.project) <= 40
    error_message = "project must be lowercase letters, digits and single hyphens, start with a letter, not end with a hyphen, and be at most 40 characters (e.g. \"orders-service\")."
  }
}

variable "aws_region" {
  type        = string
  description = "AWS region to deploy the pipeline and the application to."
  default     = "{{ cookiecutter.aws_region }}"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$", var.aws_region))
    error_message = "aws_region must be an AWS region code such as \"us-east-2\" or \"eu-west-1\"."
  }
}

variable "python_runtime" {
  type        = string
  description = "Lambda runtime for the application and the pipeline functions."
  default     = "{{ cookiecutter.python_runtime }}"

  validation {
    condition     = contains(["python3.12", "python3.13"], var.python_runtime)
    error_message = "python_runtime must be \"python3.12\" or \"python3.13\"."
  }
}

variable "deployment_strategy" {
  type        = string
  description = "CodeDeploy traffic shifting for the production alias (and the release's time budget for it), without the 'CodeDeployDefault.Lambda' prefix. Staging has its own: staging_deployment_strategy."
  default     = "{{ cookiecutter.deployment_strategy }}"

  validation {
    condition = contains([
      "AllAtOnce",
      "Canary10Percent5Minutes", "Canary10Percent10Minutes", "Canary10Percent15Minutes", "Canary10Percent30Minutes",
      "Linear10PercentEvery1Minute", "Linear10PercentEvery2Minutes", "Linear10PercentEvery3Minutes", "Linear10PercentEvery10Minutes",
    ], var.deployment_strategy)
    error_message = "deployment_strategy must name a predefined CodeDeploy Lambda config without its prefix, e.g. \"Canary10Percent5Minutes\", \"Linear10PercentEvery1Minute\" or \"AllAtOnce\"."
  }
}

variable "staging_deployment_strategy" {
  type        = string
  description = "CodeDeploy traffic shifting for the staging alias, without the 'CodeDeployDefault.Lambda' prefix. AllAtOnce by default: staging serves no traffic besides the release's smoke checks, which run only once the alias is fully shifted, so a canary there would only delay every release by its shift time; the canary or linear shift belongs to production (deployment_strategy), where it limits how many users a bad version reaches before its error alarm rolls it back. The release's time budget for CheckStaging derives from this value."
  default     = "AllAtOnce"

  validation {
    condition = contains([
      "AllAtOnce",
      "Canary10Percent5Minutes", "Canary10Percent10Minutes", "Canary10Percent15Minutes", "Canary10Percent30Minutes",
      "Linear10PercentEvery1Minute", "Linear10PercentEvery2Minutes", "Linear10PercentEvery3Minutes", "Linear10PercentEvery10Minutes",
    ], var.staging_deployment_strategy)
    error_message = "staging_deployment_strategy must name a predefined CodeDeploy Lambda config without its prefix: \"AllAtOnce\" (the default) or e.g. \"Canary10Percent5Minutes\"."
  }
}

variable "manual_approval" {
  type        = bool
  description = "Wait for a human approval (task token sent to the SNS topic) before deploying to production."
  default     = {{ 'true' if cookiecutter.manual_approval == 'yes' else 'false' }}
}

variable "approval_timeout_seconds" {
  type        = number
  description = "How long a release waits in ApproveProduction for a person before it rolls back (manual_approval only). The state machine's timeout and release-wait's budget grow with it."
  default     = 86400

  validation {
    condition     = var.approval_timeout_seconds >= 60 && var.approval_timeout_seconds <= 604800 && floor(var.approval_timeout_seconds) == var.approval_timeout_seconds
    error_message = "approval_timeout_seconds must be a whole number of seconds between 60 and 604800 (7 days)."
  }
}

variable "github_repository" {
  type        = string
  description = "GitHub repository (owner/name) of this service: the approval request links to its Approve release workflow (manual_approval only)."
  default     = "{{ cookiecutter.github_repository }}"

  validation {
    condition     = can(regex("^[A-Za-z0-9](-?[A-Za-z0-9]){0,38}/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be owner/name, e.g. \"my-org/orders-service\"."
  }
}

variable "notification_email" {
  type        = string
  description = "Email subscribed to release events and alarms (SNS sends a confirmation first). Empty for none."
  default     = "{{ cookiecutter.notification_email }}"

  validation {
    condition     = var.notification_email == "" || can(regex("^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$", var.notification_email))
    error_message = "notification_email must be an email address such as \"ops@example.com\", or \"\" for none."
  }
}

variable "permissions_boundary_name" {
  type        = string
  description = "Name of the IAM policy (created by terraform/bootstrap) set as permissions boundary on every role here. The CI apply role may only create roles carrying it. Empty for none (e.g. local runs)."
  default     = "{{ cookiecutter.project_slug }}-workload-boundary"

  validation {
    condition     = var.permissions_boundary_name == "" || can(regex("^[A-Za-z0-9+=,.@_-]{1,128}$", var.permissions_boundary_name))
    error_message = "permissions_boundary_name must be an IAM policy name (letters, digits and +=,.@_-, at most 128) or \"\"."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Retention of every CloudWatch log group. One year or more keeps release history auditable."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "log_level" {
  type        = string
  description = "LOG_LEVEL of the pipeline functions and the application."
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "max_artifact_bytes" {
  type        = number
  description = "Largest application zip validate_artifact accepts (Lambda's own limit for a zip from S3 is 50 MiB)."
  default     = 52428800

  validation {
    condition     = var.max_artifact_bytes >= 1 && var.max_artifact_bytes <= 52428800
    error_message = "max_artifact_bytes must be between 1 and 52428800 (50 MiB, Lambda's limit for a zip deployed from S3)."
  }
}

variable "release_retention_days" {
  type        = number
  description = "Days after which release artifacts under releases/ expire. Deployed versions live on in Lambda, so rollback does not need them."
  default     = 90

  validation {
    condition     = var.release_retention_days >= 1
    error_message = "release_retention_days must be at least 1."
  }
}

variable "noncurrent_version_retention_days" {
  type        = number
  description = "Days an overwritten or deleted artifact version is kept before it expires."
  default     = 30

  validation {
    condition     = var.noncurrent_version_retention_days >= 1
    error_message = "noncurrent_version_retention_days must be at least 1."
  }
}

variable "app_memory_mb" {
  type        = number
  description = "Memory of the application function in MB."
  default     = 256

  validation {
    condition     = var.app_memory_mb >= 128 && var.app_memory_mb <= 10240
    error_message = "app_memory_mb must be between 128 and 10240."
  }
}

variable "app_timeout_seconds" {
  type        = number
  description = "Timeout of the application function in seconds."
  default     = 10

  validation {
    condition     = var.app_timeout_seconds >= 1 && var.app_timeout_seconds <= 900
    error_message = "app_timeout_seconds must be between 1 and 900."
  }
}

# Reserved concurrency is opt-in: Lambda keeps at least 100 unreserved concurrent executions per
# account, and new accounts start with a concurrency quota low enough that any reservation fails
# ("Configuring reserved concurrency", Lambda Developer Guide). Set these once the account's quota
# (Service Quotas, "Concurrent executions") leaves room for them.
variable "app_reserved_concurrency" {
  type        = number
  description = "Reserved concurrency of the application (caps its scaling and guarantees it capacity). null (default): no reservation. The account must keep 100 unreserved executions."
  default     = null

  validation {
    condition     = var.app_reserved_concurrency == null || try(var.app_reserved_concurrency >= 1 && floor(var.app_reserved_concurrency) == var.app_reserved_concurrency, false)
    error_message = "app_reserved_concurrency must be null (no reservation) or a whole number of at least 1 (0 would throttle every invocation); the account must keep 100 unreserved executions."
  }
}

variable "pipeline_reserved_concurrency" {
  type        = number
  description = "Reserved concurrency of each pipeline function. null (default): no reservation. Releases are queued one at a time, so 2 leaves room for a retry once the account's quota allows it."
  default     = null

  validation {
    condition     = var.pipeline_reserved_concurrency == null || try(var.pipeline_reserved_concurrency >= 1 && floor(var.pipeline_reserved_concurrency) == var.pipeline_reserved_concurrency, false)
    error_message = "pipeline_reserved_concurrency must be null (no reservation) or a whole number of at least 1 (0 would throttle every invocation); the account must keep 100 unreserved executions."
  }
}

variable "alarm_error_threshold" {
  type        = number
  description = "Application errors per minute on an alias above which its alarm fires and CodeDeploy rolls back."
  default     = 0

  validation {
    condition     = var.alarm_error_threshold >= 0
    error_message = "alarm_error_threshold must be 0 or more."
  }
}

variable "tags" {
  type        = map(string)
  description = "Extra tags for every resource (Project and ManagedBy are always set)."
  default     = {}
}
