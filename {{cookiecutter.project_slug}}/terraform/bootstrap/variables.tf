variable "project" {
  type        = string
  description = "Project slug: prefix of every resource of the main stack, which the CI roles are scoped to."
  default     = "{{ cookiecutter.project_slug }}"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.project)) && length(var.project) <= 40
    error_message = "project must be lowercase letters, digits and single hyphens, start with a letter, not end with a hyphen, and be at most 40 characters."
  }
}

variable "aws_region" {
  type        = string
  description = "Region of the state bucket and of the main stack the CI roles manage."
  default     = "{{ cookiecutter.aws_region }}"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$", var.aws_region))
    error_message = "aws_region must be an AWS region code such as \"us-east-2\"."
  }
}

variable "github_repository" {
  type        = string
  description = "GitHub repository (owner/name) whose workflows may assume the CI roles."
  default     = "{{ cookiecutter.github_repository }}"

  validation {
    condition     = can(regex("^[A-Za-z0-9](-?[A-Za-z0-9]){0,38}/[A-Za-z0-9._-]{1,100}$", var.github_repository)) && !contains([".", ".."], split("/", var.github_repository)[1])
    error_message = "github_repository must be owner/name, e.g. \"my-org/orders-service\" (no wildcards: the OIDC trust is for exactly this repository)."
  }
}

variable "manual_approval" {
  type        = bool
  description = "The main stack waits for a person before production (its variable of the same name): creates the approve role the Approve release workflow assumes to answer that wait."
  default     = {{ 'true' if cookiecutter.manual_approval == 'yes' else 'false' }}
}

variable "state_key" {
  type        = string
  description = "Object key of the main stack's state in the state bucket (release-tooling terraform uses the same default; TF_STATE_KEY overrides both)."
  default     = "release-pipeline/terraform.tfstate"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()/-]+\\.tfstate$", var.state_key)) && !startswith(var.state_key, "/")
    error_message = "state_key must be a relative S3 key ending in .tfstate, e.g. \"release-pipeline/terraform.tfstate\"."
  }
}

variable "create_oidc_provider" {
  type        = bool
  description = "Create the account's GitHub OIDC provider. An account holds one per URL: set false when it already exists (it is then looked up)."
  default     = true
}

variable "state_version_retention_days" {
  type        = number
  description = "Days old state versions are kept (each apply writes one)."
  default     = 365

  validation {
    condition     = var.state_version_retention_days >= 30
    error_message = "state_version_retention_days must be at least 30: old state versions are the way back from a bad apply."
  }
}

variable "github_oidc_subject_ids" {
  type = object({
    owner_id      = string
    repository_id = string
  })
  description = "Trust the OIDC subject by the repository's immutable ids instead of owner/name: set after customizing the repository's subject template to include repository_owner_id and repository_id (see the README). null: trust by name."
  default     = null

  validation {
    condition     = var.github_oidc_subject_ids == null || (can(regex("^[0-9]+$", var.github_oidc_subject_ids.owner_id)) && can(regex("^[0-9]+$", var.github_oidc_subject_ids.repository_id)))
    error_message = "github_oidc_subject_ids needs the numeric owner_id and repository_id (gh api repos/OWNER/REPO --jq '.owner.id, .id')."
  }
}
