terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Local state on purpose: this root creates the state bucket itself, so it is applied once by an
  # administrator (`terraform init && terraform apply` here). Its terraform.tfstate is then the only
  # record of the OIDC roles; keep it safe, or move it into the bucket it created:
  #   1. add `backend "s3" {}` here,
  #   2. terraform init -migrate-state -backend-config="bucket=<state_bucket output>" \
  #        -backend-config="key=bootstrap/terraform.tfstate" -backend-config="region=<region>" \
  #        -backend-config="use_lockfile=true" -backend-config="encrypt=true"
  # The CI roles cannot touch that key (their state permissions cover the main stack's key only).
}
